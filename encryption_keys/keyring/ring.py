"""The process's keyring: the cache of unwrapped data keys, the writers' leases, and the shared generation
counter that makes every process drop them (the revocation bound)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache as shared_cache
from django.db import connection

from encryption_keys.envelope import DataKeyCache, DataKeyCipher, EnvelopeError
from encryption_keys.keyring.scopes import EncryptionScope

GENERATION_KEY = "encryption_keys:keyring:generation"
# How stale a process may be about revocations: at most one shared-cache GET per interval while it reads or
# writes (~0.2 ms on loopback Redis). 0.25 s keeps "every web process refuses within 1 s of check_keys"
# (tests/hardening/test_multiprocess_revocation.py) with room for a request on a loaded machine.
GENERATION_CHECK_SECONDS = 0.25


@dataclass(slots=True)
class _Lease:
    cipher: DataKeyCipher
    wrapping_key_ref: str
    encrypt_until: datetime
    remaining: int
    generation: int
    expires_at: float  # monotonic: a lease holds an unwrapped key, so the revocation bound applies to it too
    commit_hook: object | None = None  # set while the DEK row is not committed yet

    def usable(self, now: datetime, generation: int) -> bool:
        if self.remaining <= 0 or now >= self.encrypt_until or self.generation != generation:
            return False
        if time.monotonic() >= self.expires_at:
            return False
        if self.commit_hook is None:
            return True
        return any(hook is self.commit_hook for _, hook, _ in connection.run_on_commit)


class _Keyring:
    def __init__(self):
        self.cache = DataKeyCache(ttl=settings.DATAKEY_CACHE_TTL, failure_ttl=settings.DATAKEY_FAILURE_TTL)
        self.leases: dict[EncryptionScope, _Lease] = {}
        self.local = threading.local()
        self.lock = threading.Lock()
        self.generation = 0
        self.generation_checked = 0.0
        # Negative cache for writers: key ARN → (when, error) of the last failed GenerateDataKey.
        self.generate_failures: dict[str, tuple[float, EnvelopeError]] = {}

    def sync_generation(self) -> int:
        """Drop every cached DEK and lease when another process bumped the shared generation counter."""
        now = time.monotonic()
        if now - self.generation_checked < GENERATION_CHECK_SECONDS:
            return self.generation
        shared = shared_cache.get(GENERATION_KEY, 0)
        with self.lock:
            self.generation_checked = now
            if shared != self.generation:
                self.cache.clear()
                self.generate_failures.clear()
                self.leases.clear()
                self.generation = shared
        return self.generation

    def pending_leases(self) -> dict:
        if not hasattr(self.local, "leases"):
            self.local.leases = {}
        return self.local.leases


_keyring: _Keyring | None = None


def keyring() -> _Keyring:
    global _keyring
    if _keyring is None:
        _keyring = _Keyring()
    return _keyring


def data_key_cache() -> DataKeyCache:
    return keyring().cache


def invalidate_everywhere() -> None:
    """Make every process drop its cached DEKs and leases within GENERATION_CHECK_SECONDS (and this one now)."""
    ring = keyring()
    try:
        generation = shared_cache.incr(GENERATION_KEY)
    except ValueError:
        shared_cache.set(GENERATION_KEY, 1, timeout=None)
        generation = 1
    with ring.lock:
        ring.cache.clear()
        ring.generate_failures.clear()
        ring.leases.clear()
        ring.generation = generation
        ring.generation_checked = time.monotonic()
    ring.pending_leases().clear()


def reset_for_tests() -> None:
    global _keyring
    _keyring = None
