"""Data keys for writers and readers: the active DEK of a scope, unwrapping through the cache, batch reveal.

Readers open a value only when the data key its envelope names belongs to the scope its row belongs to
now (organization, region, purpose, scope reference — DESIGN.md §3, docs/envelope.md; the reference of a
session's or store's values names its control plane, `control_plane_scope_ref`): a value whose row
or parent was moved to another tenant or scope is an `integrity` error and a security event
(`scope_events`), never plaintext. The check uses the DataKey row before any KMS call and the cached
cipher's scope on a cache hit.

Writers take a *lease* on the active DEK of their scope: a block of uses reserved in the database with
one UPDATE, so a batch of values costs one round trip, not one per value. A lease made inside a
transaction is only trusted while that transaction lives (its on-commit hook is still pending); on
commit it becomes shared by the whole process, on rollback it is forgotten with the row it made.

One module per concern: ``scopes`` (who a row's values belong to), ``ring`` (the process's cache, leases and
generation counter), ``writers`` (the active data key of a scope) and ``readers`` (unwrap and reveal).
"""

from encryption_keys.keyring.readers import Revealed, cipher_for, reveal, reveal_many
from encryption_keys.keyring.ring import (
    GENERATION_CHECK_SECONDS,
    GENERATION_KEY,
    data_key_cache,
    invalidate_everywhere,
    keyring,
    reset_for_tests,
)
from encryption_keys.keyring.scopes import EncryptionScope, control_plane_scope_ref, data_key_scope
from encryption_keys.keyring.writers import LEASE_USES, active_cipher, wrapping_key_ref

__all__ = [
    "GENERATION_CHECK_SECONDS",
    "GENERATION_KEY",
    "LEASE_USES",
    "EncryptionScope",
    "Revealed",
    "active_cipher",
    "cipher_for",
    "control_plane_scope_ref",
    "data_key_cache",
    "data_key_scope",
    "invalidate_everywhere",
    "keyring",
    "reset_for_tests",
    "reveal",
    "reveal_many",
    "wrapping_key_ref",
]
