"""Readers: unwrap a data key through the cache, and reveal values — each only under a data key of the scope
its row belongs to now (a moved row is `integrity` and a security event, never plaintext)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import prefetch_related_objects

from encryption_keys import key_state
from encryption_keys.envelope import (
    DataKeyCipher,
    DecryptionError,
    EnvelopeError,
    ErrorCode,
    KeyScope,
    ScopeMismatch,
    peek_dek_id,
)
from encryption_keys.keyring.ring import keyring
from encryption_keys.keyring.scopes import data_key_scope
from encryption_keys.models import DataKey, EncryptionKey
from encryption_keys.providers import KeyServiceError, provider_for


@dataclass(slots=True)
class Revealed:
    value: object = None
    error: DecryptionError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


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
        plaintext = provider_for(row.wrapping_key_arn).decrypt(
            key_ref=row.wrapping_key_arn,
            wrapped=row.wrapped,
            context=row.encryption_context(),
            organization_id=row.organization_id,
        )
    except KeyServiceError as service_error:
        error = DecryptionError.from_error(service_error)
        if error.code is ErrorCode.KEY_PENDING_DELETION and error.deletion_date is None:
            error.deletion_date = (
                EncryptionKey.objects.filter(key_arn=row.wrapping_key_arn).values_list("deletion_date", flat=True).first()
            )
        cache.put_failure(row.pk, error, wrapping_key_arn=row.wrapping_key_arn, scope=data_key_scope(row))
        key_state.observed_failure(key_arn=row.wrapping_key_arn, error=error, operation="Decrypt")
        raise error from None
    key_state.observed_success(key_arn=row.wrapping_key_arn)
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
