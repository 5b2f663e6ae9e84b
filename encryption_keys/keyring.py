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
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache as shared_cache
from django.db import connection, transaction
from django.db.models import F, prefetch_related_objects
from django.utils import timezone

from encryption_keys import kms
from encryption_keys.envelope import (
    DataKeyCache,
    DataKeyCipher,
    DecryptionError,
    EncryptionUnavailable,
    EnvelopeError,
    ErrorCode,
    KeyScope,
    ScopeMismatch,
    peek_dek_id,
)
from encryption_keys.models import DataKey, EncryptionKey

GENERATION_KEY = "encryption_keys:keyring:generation"
GENERATION_CHECK_SECONDS = 1.0
LEASE_USES = 1024


@dataclass(frozen=True, slots=True)
class EncryptionScope:
    """Who a row's encrypted values belong to (what a model's `encryption_scope()` returns).

    Reads use only the identity — organization, region, purpose, scope reference (`key_scope`) — which a
    model computes from the row and its parents without a query when they are loaded. `wrapping_key_arn`
    is a write-time choice (see `fields.write_scope`) and never part of the identity.
    """

    organization_id: uuid.UUID
    region: str
    purpose: str
    scope_ref: str
    # An explicit wrapping key for new DEKs of this scope, instead of wrapping_key_arn() (the org's CMEK if
    # linked, else the platform key): vault secrets of a control plane created before the CMEK was linked.
    wrapping_key_arn: str | None = None

    @property
    def key_scope(self) -> KeyScope:
        return _key_scope(self.organization_id, self.region, self.purpose, self.scope_ref)


def control_plane_scope_ref(control_plane_id: object, owner_id: object) -> str:
    """The scope reference of a control plane's debug session or config store: ``<control plane id>/<owner id>``.

    The control plane is part of it because permissions and data planes are per control plane: a session
    or store re-parented to a sibling control plane of the same organization and region is another scope,
    so its values read `integrity` there. Every query that finds such a scope's data keys builds the
    reference here (docs/envelope.md).
    """
    return f"{control_plane_id}/{owner_id}"


def data_key_scope(row: DataKey) -> KeyScope:
    """The scope a DataKey row belongs to."""
    return _key_scope(row.organization_id, row.region, row.purpose, row.scope_ref)


@functools.lru_cache(maxsize=4096)
def _key_scope(organization_id, region, purpose, scope_ref) -> KeyScope:
    return KeyScope.of(organization_id, region, purpose, scope_ref)


@dataclass(slots=True)
class Revealed:
    value: object = None
    error: DecryptionError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(slots=True)
class _Lease:
    cipher: DataKeyCipher
    wrapping_key_arn: str
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


# --- which key wraps a scope's DEKs ------------------------------------------------------------------


def wrapping_key_arn(*, organization_id, region: str) -> str:
    """The organization's CMEK for the region if one is linked, else the platform key of the region."""
    arn = EncryptionKey.objects.filter(organization_id=organization_id, region=region).values_list(
        "key_arn", flat=True
    ).first()
    if arn:
        return arn
    platform = settings.PLATFORM_KMS_KEYS.get(region)
    if not platform:
        raise EncryptionUnavailable(
            ErrorCode.KMS_UNAVAILABLE, detail=f"no platform KMS key configured for region {region!r}"
        )
    return platform


# --- writers ---------------------------------------------------------------------------------------------


def active_cipher(scope: EncryptionScope) -> DataKeyCipher:
    """The cipher of the scope's active DEK; creates a DEK (GenerateDataKey) when none is usable.

    Raises EncryptionUnavailable when no DEK can be obtained: callers must then store nothing.
    """
    ring = keyring()
    generation = ring.sync_generation()
    now = timezone.now()
    pending = ring.pending_leases()
    with ring.lock:
        for leases in (pending, ring.leases):
            lease = leases.get(scope)
            if lease is not None and lease.usable(now, generation):
                lease.remaining -= 1
                return lease.cipher
    lease = _take_lease(scope, generation)
    lease.remaining -= 1
    return lease.cipher


def _take_lease(scope: EncryptionScope, generation: int) -> _Lease:
    ring = keyring()
    arn = scope.wrapping_key_arn or wrapping_key_arn(organization_id=scope.organization_id, region=scope.region)
    now = timezone.now()
    uses = min(LEASE_USES, settings.DATAKEY_MAX_USES)
    current = DataKey.objects.filter(
        organization_id=scope.organization_id,
        region=scope.region,
        purpose=scope.purpose,
        scope_ref=scope.scope_ref,
        wrapping_key_arn=arn,
        shredded_at__isnull=True,
        retired_at__isnull=True,
        encrypt_until__gt=now,
        usage_count__lte=settings.DATAKEY_MAX_USES - uses,
    ).order_by("-created_at").first()
    reserved = current is not None and DataKey.objects.filter(
        pk=current.pk, usage_count__lte=settings.DATAKEY_MAX_USES - uses, retired_at__isnull=True
    ).update(usage_count=F("usage_count") + uses)
    if reserved:
        try:
            cipher = cipher_for(current.pk, row=current, scope=scope.key_scope)
        except DecryptionError as error:
            raise EncryptionUnavailable.from_error(error) from None
        encrypt_until = current.encrypt_until
    else:
        cipher, encrypt_until = _new_data_key(scope, arn, uses)
    lease = _Lease(cipher=cipher, wrapping_key_arn=arn, encrypt_until=encrypt_until, remaining=uses,
                   generation=generation, expires_at=time.monotonic() + ring.cache.ttl)
    if connection.in_atomic_block:
        lease.commit_hook = lambda: _publish(scope, lease)
        transaction.on_commit(lease.commit_hook)
        ring.pending_leases()[scope] = lease
    else:
        with ring.lock:
            ring.leases[scope] = lease
    return lease


def _publish(scope: EncryptionScope, lease: _Lease) -> None:
    ring = keyring()
    lease.commit_hook = None
    ring.pending_leases().pop(scope, None)
    with ring.lock:
        ring.leases[scope] = lease


def _new_data_key(scope: EncryptionScope, arn: str, uses: int) -> tuple[DataKeyCipher, datetime]:
    row = DataKey(
        organization_id=scope.organization_id,
        region=scope.region,
        purpose=scope.purpose,
        scope_ref=scope.scope_ref,
        wrapping_key_arn=arn,
        encrypt_until=timezone.now() + timedelta(seconds=settings.DATAKEY_LIFETIME_SECONDS),
        usage_count=uses,
    )
    ring = keyring()
    failed = ring.generate_failures.get(arn)
    if failed is not None and time.monotonic() - failed[0] < ring.cache.failure_ttl:
        raise EncryptionUnavailable.from_error(failed[1])  # an outage must not multiply KMS traffic
    try:
        plaintext, row.wrapped = kms.generate_data_key(
            key_arn=arn, context=row.encryption_context(), organization_id=scope.organization_id
        )
    except kms.KmsError as error:
        ring.generate_failures[arn] = (time.monotonic(), error)
        raise EncryptionUnavailable.from_error(error) from None
    ring.generate_failures.pop(arn, None)
    row.save(force_insert=True)
    cipher = DataKeyCipher(row.id, plaintext, scope=data_key_scope(row))
    keyring().cache.put(cipher, wrapping_key_arn=arn)
    return cipher, row.encrypt_until


# --- readers ---------------------------------------------------------------------------------------------


def cipher_for(data_key_id: uuid.UUID, *, row: DataKey | None = None, scope: KeyScope | None = None) -> DataKeyCipher:
    """The unwrapped DEK, from the cache or through one KMS Decrypt. Raises DecryptionError.

    With `scope` (the reading row's), a data key of another scope raises `ScopeMismatch` — from the
    cache, or from its DataKey row before any KMS call.
    """
    ring = keyring()
    ring.sync_generation()
    cached = ring.cache.get(data_key_id, scope=scope)  # re-raises a recently cached failure
    if cached is not None:
        return cached
    if row is None:
        row = DataKey.objects.filter(pk=data_key_id).first()
    if row is not None and scope is not None:
        _check_scope(data_key_id, data_key_scope(row), scope)
    return _unwrap(row, data_key_id)


def _check_scope(data_key_id: uuid.UUID, key_scope: KeyScope, row_scope: KeyScope) -> None:
    if key_scope != row_scope:
        raise ScopeMismatch(dek_id=data_key_id, key_scope=key_scope, row_scope=row_scope,
                            differences=row_scope.differences(key_scope))


def _unwrap(row: DataKey | None, data_key_id: uuid.UUID) -> DataKeyCipher:
    if row is None or row.shredded_at is not None or not row.wrapped:
        raise DecryptionError(ErrorCode.DATA_KEY_SHREDDED, detail=f"data key {data_key_id} was destroyed")
    cache = keyring().cache
    try:
        plaintext = kms.decrypt(
            key_arn=row.wrapping_key_arn,
            wrapped=row.wrapped,
            context=row.encryption_context(),
            organization_id=row.organization_id,
        )
    except kms.KmsError as kms_error:
        error = DecryptionError.from_error(kms_error)
        if error.code is ErrorCode.KEY_PENDING_DELETION and error.deletion_date is None:
            error.deletion_date = (
                EncryptionKey.objects.filter(key_arn=row.wrapping_key_arn).values_list("deletion_date", flat=True).first()
            )
        cache.put_failure(row.pk, error, wrapping_key_arn=row.wrapping_key_arn, scope=data_key_scope(row))
        raise error from None
    cipher = DataKeyCipher(row.pk, plaintext, scope=data_key_scope(row))
    cache.put(cipher, wrapping_key_arn=row.wrapping_key_arn)
    return cipher


def reveal(value):
    """The plaintext of one SealedValue, or raises DecryptionError (`integrity` for a moved row)."""
    [result] = reveal_many([value])
    if result.error is not None:
        raise result.error
    return result.value


def reveal_many(values) -> list[Revealed]:
    """Reveal many SealedValues; each distinct DEK is unwrapped once (one KMS Decrypt per DEK, not per row).

    Each value is opened only if its DEK belongs to the scope its row belongs to now; a DEK that no row of
    the batch may use is not even unwrapped. Mismatches are reported once per DEK and row scope
    (`scope_events.record`).
    """
    values = list(values)
    keyring().sync_generation()
    _load_scope_parents(values)
    wants: list[tuple[uuid.UUID, KeyScope] | DecryptionError] = []
    for value in values:
        try:
            wants.append((peek_dek_id(value.envelope), value.expected_scope()))
        except DecryptionError as error:
            wants.append(error)
    ciphers = _ciphers_for({want for want in wants if isinstance(want, tuple)})
    results, mismatches = [], {}
    for value, want in zip(values, wants, strict=True):
        outcome = want if isinstance(want, DecryptionError) else ciphers[want]
        if isinstance(outcome, ScopeMismatch):
            mismatches.setdefault(want, [outcome, value, 0])[2] += 1
        if isinstance(outcome, DecryptionError):
            results.append(Revealed(error=outcome))
            continue
        try:
            results.append(Revealed(value=value.open_with(outcome)))  # checks the row's scope again
        except DecryptionError as error:
            if isinstance(error, ScopeMismatch):
                mismatches.setdefault(want, [error, value, 0])[2] += 1
            results.append(Revealed(error=error))
    if mismatches:
        from encryption_keys import scope_events

        scope_events.record(list(mismatches.values()))
    return results


def _load_scope_parents(values) -> None:
    """Load what the rows' `encryption_scope()` reads (a model's `encryption_scope_related` lookups) for the
    whole batch at once, for rows whose caller did not select_related it: a few queries, never one per row."""
    owners: dict[type, dict[int, object]] = {}
    for value in values:
        owner = getattr(value, "owner", None)
        if getattr(type(owner), "encryption_scope_related", None):
            owners.setdefault(type(owner), {})[id(owner)] = owner
    for model, instances in owners.items():
        prefetch_related_objects(list(instances.values()), *model.encryption_scope_related)


def _ciphers_for(wants: set[tuple[uuid.UUID, KeyScope]]) -> dict[tuple, DataKeyCipher | DecryptionError]:
    """For each (DEK, row scope) pair: the cipher, or why not. One query for every DEK not cached."""
    cache = keyring().cache
    outcomes: dict[tuple, DataKeyCipher | DecryptionError] = {}
    missing: dict[uuid.UUID, list[KeyScope]] = {}
    for dek_id, scope in wants:
        try:
            cached = cache.get(dek_id, scope=scope)
        except ScopeMismatch as mismatch:
            outcomes[dek_id, scope] = mismatch
            continue
        except EnvelopeError as error:
            outcomes[dek_id, scope] = DecryptionError.from_error(error)
            continue
        if cached is not None:
            outcomes[dek_id, scope] = cached
        else:
            missing.setdefault(dek_id, []).append(scope)
    rows = DataKey.objects.in_bulk(list(missing)) if missing else {}
    for dek_id, scopes in missing.items():
        row = rows.get(dek_id)
        allowed = []
        for scope in scopes:
            try:
                if row is not None:
                    _check_scope(dek_id, data_key_scope(row), scope)
                allowed.append(scope)
            except ScopeMismatch as mismatch:
                outcomes[dek_id, scope] = mismatch
        if not allowed:
            continue  # no row of this batch may use this DEK: no KMS call for it
        try:
            outcome = _unwrap(row, dek_id)
        except DecryptionError as error:
            outcome = error
        for scope in allowed:
            outcomes[dek_id, scope] = outcome
    return outcomes
