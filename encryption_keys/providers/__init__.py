"""Key providers: the registry (``settings.KEY_PROVIDERS``) and the look-ups every caller uses.

``provider_for(key_ref)`` answers for a stored or pasted reference; ``provider_named(name)`` for a stored
provider name; ``parse_key_ref(text)`` validates what a person pasted (InvalidKeyRef says why). ``remedy_for``,
``access_statements``, ``key_identity`` and ``provider_name`` are the neutral look-ups pages and models use.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from encryption_keys.envelope import ERROR_CODES, ErrorCode
from encryption_keys.providers.base import (
    AccessStatement,
    InvalidKeyRef,
    KeyHealth,
    KeyProvider,
    KeyRef,
    KeyServiceError,
    ProviderNotConfigured,
)

__all__ = [
    "AccessStatement", "InvalidKeyRef", "KeyHealth", "KeyProvider", "KeyRef", "KeyServiceError",
    "ProviderNotConfigured", "access_statements", "key_identity", "metadata_rows", "parse_key_ref", "provider_for", "provider_name",
    "check_settings", "provider_named", "providers", "remedy_for", "reset",
]


@cache
def providers() -> tuple[KeyProvider, ...]:
    return tuple(import_string(path)() for path in settings.KEY_PROVIDERS)


def reset() -> None:
    """Forget the instances and their clients (tests that change KEY_PROVIDERS or endpoints)."""
    for provider in providers():
        provider.reset_clients()
    providers.cache_clear()


def provider_named(name: str) -> KeyProvider:
    for provider in providers():
        if provider.name == name:
            return provider
    raise LookupError(f"no key provider named {name!r} in KEY_PROVIDERS")


def provider_for(key_ref: str) -> KeyProvider:
    """The provider whose reference form ``key_ref`` is written in; InvalidKeyRef when none is."""
    text = (key_ref or "").strip()
    for provider in providers():
        if provider.recognises(text):
            return provider
    forms = "; ".join(f"{provider.label}: {provider.ref_example}" for provider in providers())
    raise InvalidKeyRef(f"This is not a key reference this installation accepts. Expected {forms}.")


def parse_key_ref(text: str) -> KeyRef:
    return provider_for(text).parse(text)


def remedy_for(code, *, key_ref: str | None = None) -> str:
    """What an Organization Admin does about ``code``: the remedy of the provider of ``key_ref`` when it has one
    (its console, its commands), else the provider-neutral remedy of ``envelope.ERROR_CODES``."""
    code = ErrorCode(code)
    if key_ref:
        try:
            remedy = provider_for(key_ref).remedy(code)
        except InvalidKeyRef:
            remedy = ""
        if remedy:
            return remedy
    return ERROR_CODES[code].remedy


def access_statements(organization, *, key_ref: str | None = None) -> list[tuple[KeyProvider, AccessStatement]]:
    """What the Org Admin grants the platform: for the provider of ``key_ref``, or for every provider (the link
    and replace pages, before a key is chosen)."""
    if key_ref:
        try:
            chosen = [provider_for(key_ref)]
        except InvalidKeyRef:
            chosen = list(providers())
    else:
        chosen = list(providers())
    return [(provider, provider.access_statement(organization, key_ref=key_ref if len(chosen) == 1 else None))
            for provider in chosen]


def metadata_rows(key_ref: str, metadata: dict) -> list[tuple[str, str]]:
    """The key page's facts about the key, by its provider, from the stored snapshot."""
    try:
        return provider_for(key_ref).metadata_rows(metadata or {})
    except InvalidKeyRef:
        return []


def key_identity(key_ref: str) -> str:
    """Which key ``key_ref`` names (``KeyRef.identity``); text no provider recognises stands for itself."""
    try:
        return provider_for(key_ref).identity(key_ref)
    except InvalidKeyRef:
        return (key_ref or "").strip()


def provider_name(key_ref: str) -> str:
    """The name of the provider whose reference form ``key_ref`` is written in; "" when none is."""
    try:
        return provider_for(key_ref).name
    except InvalidKeyRef:
        return ""


def check_settings(app_configs=None, **kwargs) -> list:
    """Django system check: each provider's own settings (e.g. a malformed TRANSIT_SERVERS), as errors."""
    from django.core import checks

    problems = []
    for provider in providers():
        if problem := provider.settings_problem():
            problems.append(checks.Error(problem, hint=f"Fix the {provider.label} settings.",
                                         id=f"encryption_keys.E{len(problems) + 1:03d}", obj=provider.name))
    return problems
