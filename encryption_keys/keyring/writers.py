"""Writers: the active data key of a scope, leased in blocks of uses, and new data keys (GenerateDataKey).

A lease made inside a transaction is only trusted while that transaction lives (its on-commit hook is still
pending); on commit it becomes shared by the whole process, on rollback it is forgotten with the row it made.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from encryption_keys import key_state
from encryption_keys.envelope import DataKeyCipher, DecryptionError, EncryptionUnavailable, ErrorCode
from encryption_keys.keyring.readers import cipher_for
from encryption_keys.keyring.ring import _Lease, keyring
from encryption_keys.keyring.scopes import EncryptionScope, data_key_scope
from encryption_keys.models import DataKey, EncryptionKey
from encryption_keys.providers import KeyServiceError, provider_for

LEASE_USES = 1024
# lease_ahead reserves the uses of this many batches like the one about to be written (at least LEASE_USES), so
# most batches find their uses in the lease and make no round trip to the DataKey row.
LEASE_BATCHES_AHEAD = 16


# --- which key wraps a scope's DEKs ------------------------------------------------------------------


def wrapping_key_ref(*, organization_id, region: str) -> str:
    """The organization's CMEK for the region if one is linked, else the platform key of the region."""
    arn = EncryptionKey.objects.filter(organization_id=organization_id, region=region).values_list(
        "key_ref", flat=True
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
    lease = _take_lease(scope, generation, uses=min(LEASE_USES, settings.DATAKEY_MAX_USES))
    lease.remaining -= 1
    return lease.cipher


def _take_lease(scope: EncryptionScope, generation: int, *, uses: int) -> _Lease:
    """Reserve `uses` uses (at most DATAKEY_MAX_USES) of the scope's active DataKey, or of a new one."""
    ring = keyring()
    arn = scope.wrapping_key_ref or wrapping_key_ref(organization_id=scope.organization_id, region=scope.region)
    now = timezone.now()
    current = DataKey.objects.filter(
        organization_id=scope.organization_id,
        region=scope.region,
        purpose=scope.purpose,
        scope_ref=scope.scope_ref,
        wrapping_key_ref=arn,
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
    lease = _Lease(cipher=cipher, wrapping_key_ref=arn, encrypt_until=encrypt_until, remaining=uses,
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
        wrapping_key_ref=arn,
        encrypt_until=timezone.now() + timedelta(seconds=settings.DATAKEY_LIFETIME_SECONDS),
        usage_count=uses,
    )
    ring = keyring()
    failed = ring.generate_failures.get(arn)
    if failed is not None and time.monotonic() - failed[0] < ring.cache.failure_ttl:
        raise EncryptionUnavailable.from_error(failed[1])  # an outage must not multiply KMS traffic
    try:
        plaintext, row.wrapped = provider_for(arn).generate_data_key(
            key_ref=arn, context=row.encryption_context(), organization_id=scope.organization_id
        )
    except KeyServiceError as error:
        ring.generate_failures[arn] = (time.monotonic(), error)
        key_state.observed_failure(key_ref=arn, error=error, operation="GenerateDataKey")
        raise EncryptionUnavailable.from_error(error) from None
    ring.generate_failures.pop(arn, None)
    key_state.observed_success(key_ref=arn)
    row.save(force_insert=True)
    cipher = DataKeyCipher(row.id, plaintext, scope=data_key_scope(row))
    keyring().cache.put(cipher, wrapping_key_ref=arn)
    return cipher, row.encrypt_until


def lease_ahead(scope: EncryptionScope, uses: int) -> None:
    """Before a transaction that will seal about `uses` values of `scope` (a batch): when the lease held has fewer
    uses left, take one now for LEASE_BATCHES_AHEAD such batches (at least LEASE_USES, at most DATAKEY_MAX_USES).

    Taken outside the caller's transaction, the DataKey row's reservation UPDATE — and a new data key, if one
    is needed — commits at once; taken inside, it holds that row locked until the caller commits, so concurrent
    batches of one scope would wait for each other. Raises EncryptionUnavailable as active_cipher does; inside
    a transaction it does nothing (active_cipher leases as before)."""
    if connection.in_atomic_block:
        return
    size = min(max(LEASE_USES, LEASE_BATCHES_AHEAD * uses), settings.DATAKEY_MAX_USES)
    ring = keyring()
    generation = ring.sync_generation()
    now = timezone.now()
    with ring.lock:
        lease = ring.leases.get(scope)
        if lease is not None and lease.usable(now, generation) and lease.remaining >= min(uses, size):
            return
    _take_lease(scope, generation, uses=size)


def active_cipher_for(scope: EncryptionScope, uses: int) -> DataKeyCipher | None:
    """The scope's active cipher with `uses` uses taken at once, when the lease held has that many left; else
    None, and the caller seals value by value with `active_cipher` (which leases as needed). A batch of values
    then costs one look-up instead of one per value."""
    ring = keyring()
    generation = ring.sync_generation()
    now = timezone.now()
    pending = ring.pending_leases()
    with ring.lock:
        for leases in (pending, ring.leases):
            lease = leases.get(scope)
            if lease is not None and lease.usable(now, generation) and lease.remaining >= uses:
                lease.remaining -= uses
                return lease.cipher
    return None
