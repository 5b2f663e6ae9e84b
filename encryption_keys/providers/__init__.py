"""Key providers: the registry (``settings.KEY_PROVIDERS``) and the look-ups every caller uses.

``provider_for(key_ref)`` answers for a stored or pasted reference; ``provider_named(name)`` for a stored
provider name; ``parse_key_ref(text)`` validates what a person pasted (InvalidKeyRef says why).
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from encryption_keys.providers.base import (
    AccessStatement,
    InvalidKeyRef,
    KeyHealth,
    KeyProvider,
    KeyRef,
    KeyServiceError,
)

__all__ = [
    "AccessStatement", "InvalidKeyRef", "KeyHealth", "KeyProvider", "KeyRef", "KeyServiceError",
    "parse_key_ref", "provider_for", "provider_named", "providers", "reset",
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
