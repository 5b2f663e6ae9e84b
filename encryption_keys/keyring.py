"""Data keys for writers and readers: the active DEK of a scope, unwrapping through the cache, batch reveal.

Writers take a *lease* on the active DEK of their scope: a block of uses reserved in the database with
one UPDATE, so a batch of values costs one round trip, not one per value. A lease made inside a
transaction is only trusted while that transaction lives (its on-commit hook is still pending); on
commit it becomes shared by the whole process, on rollback it is forgotten with the row it made.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache as shared_cache
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from encryption_keys import kms
from encryption_keys.envelope import (
    DataKeyCache,
    DataKeyCipher,
    DecryptionError,
    EncryptionUnavailable,
    EnvelopeError,
    ErrorCode,
    peek_dek_id,
)
from encryption_keys.models import DataKey, EncryptionKey

GENERATION_KEY = "encryption_keys:keyring:generation"
GENERATION_CHECK_SECONDS = 1.0
LEASE_USES = 1024


@dataclass(frozen=True, slots=True)
class EncryptionScope:
    organization_id: uuid.UUID
    region: str
    purpose: str
    scope_ref: str
    # An explicit wrapping key for new DEKs of this scope, instead of wrapping_key_arn() (the org's CMEK if
    # linked, else the platform key): vault secrets of a control plane created before the CMEK was linked.
    wrapping_key_arn: str | None = None


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
            cipher = cipher_for(current.pk, row=current)
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
    cipher = DataKeyCipher(row.id, plaintext)
    keyring().cache.put(cipher, wrapping_key_arn=arn)
    return cipher, row.encrypt_until


# --- readers ---------------------------------------------------------------------------------------------


def cipher_for(data_key_id: uuid.UUID, *, row: DataKey | None = None) -> DataKeyCipher:
    """The unwrapped DEK, from the cache or through one KMS Decrypt. Raises DecryptionError."""
    ring = keyring()
    ring.sync_generation()
    cached = ring.cache.get(data_key_id)  # re-raises a recently cached failure
    if cached is not None:
        return cached
    if row is None:
        row = DataKey.objects.filter(pk=data_key_id).first()
    return _unwrap(row, data_key_id)


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
        cache.put_failure(row.pk, error, wrapping_key_arn=row.wrapping_key_arn)
        raise error from None
    cipher = DataKeyCipher(row.pk, plaintext)
    cache.put(cipher, wrapping_key_arn=row.wrapping_key_arn)
    return cipher


def reveal_many(values) -> list[Revealed]:
    """Reveal many SealedValues; each distinct DEK is unwrapped once (one KMS Decrypt per DEK, not per row)."""
    values = list(values)
    ring = keyring()
    ring.sync_generation()
    dek_of: list[uuid.UUID | EnvelopeError] = []
    for value in values:
        try:
            dek_of.append(peek_dek_id(value.envelope))
        except DecryptionError as error:
            dek_of.append(error)
    ciphers: dict[uuid.UUID, DataKeyCipher | DecryptionError] = {}
    missing = []
    for dek_id in {d for d in dek_of if isinstance(d, uuid.UUID)}:
        try:
            cached = ring.cache.get(dek_id)
        except EnvelopeError as error:
            ciphers[dek_id] = DecryptionError.from_error(error)
            continue
        if cached is not None:
            ciphers[dek_id] = cached
        else:
            missing.append(dek_id)
    rows = DataKey.objects.in_bulk(missing)
    for dek_id in missing:
        try:
            ciphers[dek_id] = _unwrap(rows.get(dek_id), dek_id)
        except DecryptionError as error:
            ciphers[dek_id] = error
    results = []
    for value, dek_id in zip(values, dek_of, strict=True):
        outcome = dek_id if isinstance(dek_id, EnvelopeError) else ciphers[dek_id]
        if isinstance(outcome, EnvelopeError):
            results.append(Revealed(error=DecryptionError.from_error(outcome)))
            continue
        try:
            results.append(Revealed(value=value.open_with(outcome)))
        except DecryptionError as error:
            results.append(Revealed(error=error))
    return results

