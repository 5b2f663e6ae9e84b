"""Which span attributes may be stored unencrypted: a case-insensitive, pattern-based denylist.

Span attributes are metadata, stored in clear so pages can show the waterfall (and the operator's admin
lists them). Anything that may carry a credential or payload data belongs in the encrypted payload
capture instead, so it is dropped here, whatever its spelling:

- payload data: the full URL, its query, the target, client address, user agent, bodies (`SENSITIVE_NAMES`);
- every request/response header (`http.request.header.*`, `http.response.header.*`, any casing);
- any attribute whose name speaks of a credential, matched on its words (split at `.`, `_`, `-`, `:`, `/`,
  spaces and camelCase; compared lowercased): authorization, proxy-authorization, cookie, set-cookie,
  x-api-key / apikey / api_key, *token (not `tokens`: LLM token counts stay), *secret*, *password*,
  credential, signature, session id, private/access key, jwt, bearer, csrf;
- a string value that is itself a credential (`Bearer …`, `Basic …`).

A string value holding a URL or a query string keeps its shape, but the value of each credential-like
query parameter (`token=`, `key=`, `password=`, `signature=`, `sig=`, `code=` …) is replaced by
`REDACTED`. `scrub()` is applied on ingest and again where spans are shown (the trace page, the admin),
so rows stored before a rule existed do not show what it now hides.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "REDACTED"

SENSITIVE_NAMES = frozenset({
    "http.url", "url.full", "url.query", "url.original", "http.target", "http.client_ip", "client.address",
    "client.ip", "net.peer.ip", "source.address", "http.user_agent", "user_agent.original",
    "http.request.body", "http.response.body", "http.query", "http.query_string",
})
SENSITIVE_PREFIXES = ("http.request.header.", "http.response.header.")

# Whole words (lowercased) that name a credential.
CREDENTIAL_WORDS = frozenset({
    "authorization", "authorisation", "auth", "cookie", "cookies", "apikey", "token", "secret", "secrets",
    "password", "passwd", "passphrase", "pwd", "credential", "credentials", "signature", "jwt", "bearer",
    "csrf", "xsrf", "sessionid", "privatekey", "accesskey", "querystring",
})
# Adjacent words that together name one (x-api-key, private_key, set-cookie is covered by "cookie").
CREDENTIAL_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key"),
                              ("session", "id"), ("client", "secret"), ("query", "string")})
# Fragments that name one inside a word: clientsecret, dbpassword, accesstoken, xapikey.
CREDENTIAL_INFIXES = ("secret", "password", "passwd", "apikey", "authorization", "cookie", "credential")
CREDENTIAL_SUFFIXES = ("token",)
# Query parameters are shorter-named: `?key=…&sig=…` are credentials there.
QUERY_CREDENTIAL_WORDS = CREDENTIAL_WORDS | {"key", "sig", "code", "pass", "session", "signed", "hash", "otp"}

_SEPARATORS = re.compile(r"[\W_]+")
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_CREDENTIAL_VALUE = re.compile(r"\s*(bearer|basic|digest|negotiate|token|apikey)\s+\S", re.IGNORECASE)


def words(name: str) -> list[str]:
    """`Http.Request.Header.X-API-Key` → ['http', 'request', 'header', 'x', 'api', 'key']; `accessToken` → [..]."""
    return [word.lower() for word in _WORD.findall(name)]


def names_a_credential(name: str, *, vocabulary: frozenset[str] = CREDENTIAL_WORDS) -> bool:
    parts = words(name)
    if any(part in vocabulary for part in parts) or any(pair in CREDENTIAL_PAIRS for pair in zip(parts, parts[1:], strict=False)):
        return True
    if any(part.endswith(CREDENTIAL_SUFFIXES) for part in parts):
        return True
    compact = _SEPARATORS.sub("", name.casefold())
    return any(fragment in compact for fragment in CREDENTIAL_INFIXES)


def is_sensitive(name: str, value: object = None) -> bool:
    """Must this attribute be dropped (not stored, not shown)?"""
    if _sensitive_name(name):
        return True
    return isinstance(value, str) and _CREDENTIAL_VALUE.match(value) is not None


@functools.lru_cache(maxsize=4096)
def _sensitive_name(name: str) -> bool:
    """By name alone. Cached: a batch repeats the same few dozen names on every span, and splitting each into
    words was a third of the ingest's own Python time."""
    lowered = name.strip().lower()
    return lowered in SENSITIVE_NAMES or lowered.startswith(SENSITIVE_PREFIXES) or names_a_credential(name)


def redact_query(value: str) -> str:
    """A URL or query string with the values of credential-like parameters replaced by REDACTED."""
    if "=" not in value:
        return value
    if "?" in value or "://" in value:
        parts = urlsplit(value)
        query = _redacted_pairs(parts.query)
        fragment = _redacted_pairs(parts.fragment) if "=" in parts.fragment else parts.fragment
        return urlunsplit(parts._replace(query=query, fragment=fragment))
    if "&" in value or value.count("=") == 1 and " " not in value:
        return _redacted_pairs(value)
    return value


def _redacted_pairs(query: str) -> str:
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        return query
    return urlencode([(key, REDACTED if names_a_credential(key, vocabulary=QUERY_CREDENTIAL_WORDS) else val)
                      for key, val in pairs], safe="/:")


def scrub(attributes: dict) -> tuple[dict, int]:
    """The attributes that may be stored or shown unencrypted (credential query values redacted), and how many
    were dropped."""
    kept = {}
    for name, value in attributes.items():
        if is_sensitive(name, value):
            continue
        kept[name] = redact_query(value) if isinstance(value, str) else value
    return kept, len(attributes) - len(kept)


# The span attributes that name what a trace went through. The ingest API's trace carries ids only
# (`route_id`, `service_id`, `consumer_id`); Kong's spans may carry the names (the router span's
# `kong.route.name`), and a data plane may add the others. First listed wins.
NAME_ATTRIBUTES = {
    "route": ("kong.route.name", "route.name"),
    "service": ("kong.service.name", "service.name"),
    "consumer": ("kong.consumer.username", "consumer.username", "consumer.name"),
}
NAME_MAX_LENGTH = 200


def entity_names(spans_attributes, entities=tuple(NAME_ATTRIBUTES)) -> dict[str, str]:
    """{entity: name} for `entities` from a trace's stored (scrubbed) span attributes, spans in (start, id) order:
    the first span naming an entity wins, and within a span the first attribute listed."""
    found: dict[str, str] = {}
    for attributes in spans_attributes:
        for entity in entities:
            if entity in found:
                continue
            for key in NAME_ATTRIBUTES[entity]:
                value = attributes.get(key)
                if isinstance(value, str) and value:
                    found[entity] = value[:NAME_MAX_LENGTH]
                    break
    return found


def name_attributes(attributes: dict) -> dict:
    """The naming attributes of an incoming span as they will be stored: only those, scrubbed (cheaper than
    scrubbing every attribute twice, and the same, as `scrub` treats each attribute alone)."""
    names = {key: attributes[key] for keys in NAME_ATTRIBUTES.values() for key in keys if key in attributes}
    return scrub(names)[0] if names else names


def trace_names(spans) -> dict[str, str]:
    """The route and service names an incoming trace's spans carry, as ingest stores them on the trace: from
    `spans` as (start_time_unix_nano, attributes), the naming attributes scrubbed as they will be stored, in the
    order they are read back (start time, then position)."""
    ordered = sorted(spans, key=lambda span: span[0])
    return entity_names((name_attributes(attributes) for _start, attributes in ordered), entities=("route", "service"))
