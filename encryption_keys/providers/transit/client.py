"""Calls to a Transit server: one authenticated hvac client per configured server, typed errors, the call log.

Every call the platform makes to Transit goes through ``call``: it authenticates with the server's configured
method (a token, or an AppRole login renewed before its token expires and once more when the server answers
403, in case the token was revoked), never follows a redirect (the configured address is the only place a
request goes), maps failures to our ``ErrorCode`` and records the call in the key-usage log.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

import hvac
import hvac.exceptions
import requests
import requests.adapters
from django.conf import settings

from encryption_keys import call_log
from encryption_keys.envelope import ErrorCode
from encryption_keys.providers.base import KeyServiceError
from encryption_keys.providers.transit.servers import TransitServer

_MULTI_ERROR = re.compile(r"\d+ errors? occurred:")
#: Seconds before an AppRole token's expiry at which the platform logs in again.
RENEW_MARGIN_SECONDS = 30

# Transit's own error texts (400 answers) and what they mean for the data.
_TEXT_CODES = (
    ("encryption key not found", ErrorCode.KEY_NOT_FOUND),
    ("soft-deleted", ErrorCode.KEY_DISABLED),
    ("disallowed by policy (too old)", ErrorCode.KEY_DISABLED),
    ("message authentication failed", ErrorCode.INTEGRITY),
    ("invalid ciphertext", ErrorCode.INTEGRITY),
    ("unable to decode", ErrorCode.INTEGRITY),
)
_UNAVAILABLE = (
    hvac.exceptions.InternalServerError, hvac.exceptions.VaultDown, hvac.exceptions.BadGateway,
    hvac.exceptions.VaultNotInitialized, hvac.exceptions.RateLimitExceeded, hvac.exceptions.UnexpectedError,
    hvac.exceptions.PreconditionFailed,
)


def provider_text(error: hvac.exceptions.VaultError) -> str:
    """The server's own error words (never a request's data: Transit does not echo plaintext), without Go's
    multi-error framing ("1 error occurred:\n\t* permission denied")."""
    words = []
    for text in error.errors or []:
        lines = [line.strip().removeprefix("* ") for line in str(text).splitlines()]
        words += [line for line in lines if line and not _MULTI_ERROR.fullmatch(line)]
    return "; ".join(words) or type(error).__name__


def to_error(exc: Exception, key_ref: str) -> KeyServiceError:
    if isinstance(exc, KeyServiceError):
        return exc
    if isinstance(exc, requests.exceptions.RequestException):
        name = type(exc).__name__
        return KeyServiceError(ErrorCode.KMS_UNAVAILABLE, provider_code=name, key_ref=key_ref, detail=name)
    text = provider_text(exc)
    code = ErrorCode.KEY_ACCESS_DENIED  # 401, 403, and a 400 we cannot name: the key is not usable by us
    if isinstance(exc, hvac.exceptions.InvalidPath):
        code, text = ErrorCode.KEY_NOT_FOUND, text if exc.errors else "key not found"
    elif isinstance(exc, _UNAVAILABLE):
        code = ErrorCode.KMS_UNAVAILABLE
    elif isinstance(exc, hvac.exceptions.InvalidRequest):
        code = next((c for words, c in _TEXT_CODES if words in text), code)
    return KeyServiceError(code, provider_code=text[:200], key_ref=key_ref, detail=text[:300])


@dataclass
class _Session:
    client: hvac.Client
    expires_at: float | None = None  # monotonic; None: a configured token, or an AppRole token without a TTL
    login: dict | None = None  # the last AppRole login's answer


class Connections:
    """One client per configured server, made on first use; thread-safe (logins are serialised per server)."""

    def __init__(self):
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._sessions.clear()

    def client(self, server: TransitServer, *, relogin: bool = False) -> hvac.Client:
        with self._lock:
            session = self._sessions.get(server.address)
            if session is None:
                session = self._sessions[server.address] = _Session(new_client(server))
                relogin = server.auth_method == "approle"
            elif session.expires_at is not None and time.monotonic() >= session.expires_at:
                relogin = True
            if relogin and server.auth_method == "approle":
                try:
                    session.expires_at, session.login = _approle_login(session.client, server)
                except BaseException:
                    del self._sessions[server.address]  # log in again on the next call
                    raise
            return session.client

    def login(self, server: TransitServer) -> dict:
        """Log in with the server's AppRole now; the login's answer (its token's policies, TTL)."""
        self.client(server, relogin=True)
        with self._lock:
            return dict(self._sessions[server.address].login or {})


def new_client(server: TransitServer) -> hvac.Client:
    timeout = (float(settings.TRANSIT_CONNECT_TIMEOUT), float(settings.TRANSIT_READ_TIMEOUT))
    session = requests.Session()
    # As many kept connections as calls a process puts in flight (a health sweep, a re-wrap), and no retries:
    # a failure is reported at once as kms_unavailable, the caller decides.
    pool = max(10, *(int(getattr(settings, name, 1)) for name in ("KEY_HEALTH_SWEEP_CONCURRENCY",
                                                                   "KEY_REWRAP_CONCURRENCY")))
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return hvac.Client(
        session=session,
        url=server.address,
        token=server.token if server.auth_method == "token" else "",  # never VAULT_TOKEN or ~/.vault-token
        verify=server.ca_bundle or True,
        timeout=timeout,
        allow_redirects=False,
        namespace=server.namespace or None,
    )


def _approle_login(client: hvac.Client, server: TransitServer) -> tuple[float | None, dict]:
    response = client.auth.approle.login(role_id=server.role_id, secret_id=server.secret_id,
                                         mount_point=server.approle_mount)
    ttl = int((response.get("auth") or {}).get("lease_duration") or 0)
    return (time.monotonic() + max(ttl - RENEW_MARGIN_SECONDS, 1) if ttl else None), response


def call(connections: Connections, server: TransitServer, operation: str, key_ref: str, action, *,
         organization_id=None, context: dict | None = None):
    """``action(client)`` against ``server``, as ``operation`` (logged), raising KeyServiceError."""

    def attempt():
        try:
            return action(connections.client(server))
        except hvac.exceptions.Forbidden:
            if server.auth_method != "approle":
                raise
            return action(connections.client(server, relogin=True))  # the token may have been revoked

    return logged(server, operation, key_ref, attempt, organization_id=organization_id, context=context)


def logged(server: TransitServer, operation: str, key_ref: str, attempt, *, organization_id=None,
           context: dict | None = None):
    """``attempt()``, recorded in the key-usage log, its failures as KeyServiceError."""
    started = time.perf_counter()
    outcome, request_id = "ok", ""
    try:
        response = attempt()
        if isinstance(response, dict):
            request_id = str(response.get("request_id") or "")
        return response
    except (hvac.exceptions.VaultError, requests.exceptions.RequestException) as exc:
        error = to_error(exc, key_ref)
        outcome = error.code.value
        raise error from None
    finally:
        record(organization_id=organization_id, key_ref=key_ref, location=server.host, operation=operation,
               context=context, outcome=outcome, started=started, request_id=request_id)


def record(*, organization_id, key_ref: str, location: str, operation: str, context: dict | None, outcome: str,
           started: float, request_id: str = "") -> None:
    call_log.record(
        organization_id=organization_id,
        key_ref=key_ref,
        location=location[:32],
        operation=operation,
        encryption_context=context or {},
        outcome=outcome,
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
        request_id=request_id[:100],
    )
