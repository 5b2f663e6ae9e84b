"""In-process cache of unwrapped data keys, with brief negative caching (DESIGN.md §5).

``ttl`` is the revocation bound: after a customer revokes their key, a cached DEK
keeps serving reads for at most ``ttl`` seconds. Failures are remembered for
``failure_ttl`` seconds so a revoked key is not hammered with KMS calls. Entries
hold a ``DataKeyCipher`` (never raw key bytes) or a typed error, nothing else.

Every entry carries the scope of its data key (a cipher's ``scope``, or the one given with a failure):
``get(dek_id, scope=...)`` refuses a hit whose key belongs to another scope than the reader's row with
``ScopeMismatch``, exactly as a fresh read of the DataKey row would.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from .binding import KeyScope
from .cipher import DataKeyCipher
from .errors import EnvelopeError, ScopeMismatch


@dataclass(slots=True)
class _Entry:
    """A cached cipher or a cached failure, with the KMS key that wraps the DEK and the DEK's scope."""

    cipher: DataKeyCipher | None
    error: EnvelopeError | None
    wrapping_key_ref: str
    stored_at: float
    scope: KeyScope | None = None


class DataKeyCache:
    """Thread-safe, size-bounded LRU of DEK ciphers, expiring after ``ttl`` seconds.

    Expiry is computed from the current ``ttl`` / ``failure_ttl``, so lowering them
    at runtime takes effect at once; a value ``<= 0`` disables that kind of entry.
    """

    def __init__(
        self,
        *,
        ttl: float = 60.0,
        max_entries: int = 1024,
        failure_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[uuid.UUID, _Entry] = OrderedDict()
        self._stats = {"hits": 0, "misses": 0, "failures_served": 0, "evictions": 0}
        self._ttl = ttl
        self.failure_ttl = failure_ttl
        self.max_entries = max_entries

    @property
    def ttl(self) -> float:
        """Seconds a cipher is served from cache: the revocation bound."""
        return self._ttl

    @ttl.setter
    def ttl(self, seconds: float) -> None:
        self._ttl = seconds
        self.purge_expired()  # lowering the bound drops key material at once

    def get(self, dek_id: uuid.UUID, *, scope: KeyScope | None = None) -> DataKeyCipher | None:
        """Return the cached cipher, re-raise a cached failure, or return ``None``.

        With ``scope`` (the reading row's), an entry of another scope raises ``ScopeMismatch`` (before
        a cached failure is re-raised).
        """
        with self._lock:
            entry = self._entries.get(dek_id)
            if entry is not None and self._expired(entry):
                del self._entries[dek_id]
                entry = None
            if entry is None:
                self._stats["misses"] += 1
                return None
            if entry.error is not None:
                self._stats["failures_served"] += 1
            else:
                self._entries.move_to_end(dek_id)
                self._stats["hits"] += 1
        key_scope = entry.cipher.scope if entry.cipher is not None else entry.scope
        if scope is not None and key_scope != scope and (entry.cipher is not None or key_scope is not None):
            raise ScopeMismatch(
                dek_id=dek_id, key_scope=key_scope, row_scope=scope,
                differences=scope.differences(key_scope) if key_scope is not None else (),
            )
        if entry.error is not None:
            raise type(entry.error).from_error(entry.error)
        return entry.cipher

    def put(self, cipher: DataKeyCipher, *, wrapping_key_ref: str) -> None:
        """Cache ``cipher`` (replacing any failure for its DEK); no-op when ``ttl <= 0``."""
        if self.ttl <= 0:
            return
        self._store(cipher.dek_id, _Entry(cipher, None, wrapping_key_ref, self._clock()))

    def put_failure(self, dek_id: uuid.UUID, error: EnvelopeError, *, wrapping_key_ref: str = "",
                    scope: KeyScope | None = None) -> None:
        """Remember that unwrapping ``dek_id`` (of ``scope``) failed; no-op when ``failure_ttl <= 0``."""
        if self.failure_ttl <= 0:
            return
        self._store(dek_id, _Entry(None, error, wrapping_key_ref, self._clock(), scope))

    def evict(self, dek_id: uuid.UUID) -> bool:
        """Drop one DEK's entry; return whether there was one."""
        with self._lock:
            return self._entries.pop(dek_id, None) is not None

    def evict_wrapping_key(self, arn: str) -> int:
        """Drop every entry (cipher or failure) wrapped by KMS key ``arn``; return the count."""
        return self._drop_where(lambda entry: entry.wrapping_key_ref == arn)

    def purge_expired(self) -> int:
        """Drop every expired entry; return how many were dropped."""
        return self._drop_where(self._expired)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def stats(self) -> dict[str, int]:
        """Counters only: hits, misses, failures_served and LRU evictions."""
        with self._lock:
            return dict(self._stats)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        return (
            f"<DataKeyCache entries={len(self)} ttl={self.ttl}s "
            f"failure_ttl={self.failure_ttl}s max_entries={self.max_entries}>"
        )

    def _store(self, dek_id: uuid.UUID, entry: _Entry) -> None:
        with self._lock:
            self._entries[dek_id] = entry
            self._entries.move_to_end(dek_id)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                self._stats["evictions"] += 1

    def _drop_where(self, predicate: Callable[[_Entry], bool]) -> int:
        with self._lock:
            doomed = [dek_id for dek_id, entry in self._entries.items() if predicate(entry)]
            for dek_id in doomed:
                del self._entries[dek_id]
            return len(doomed)

    def _expired(self, entry: _Entry) -> bool:
        lifetime = self.failure_ttl if entry.error is not None else self.ttl
        return self._clock() - entry.stored_at >= lifetime
