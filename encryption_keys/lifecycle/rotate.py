"""Rotating data keys: retire active DEKs so new writes get fresh ones, and — for a compromised DEK —
re-encrypt one scope's records under a fresh DEK, then shred the old ones.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from encryption_keys import call_log, keyring
from encryption_keys.fields import SealedValue
from encryption_keys.lifecycle.records import RecordRef, records_under
from encryption_keys.lifecycle.shred import shred_data_keys
from encryption_keys.models import DataKey
from konnect_admin.models import Organization
from konnect_admin.services import audit_record

BATCH_SIZE = 500
MAX_PASSES = 3  # writers that still held a lease on an old DEK are caught by the next pass


@dataclass
class ReencryptResult:
    old_data_keys: int = 0
    records: int = 0
    values: int = 0
    unreadable: Counter = field(default_factory=Counter)  # error code → values that could not be read
    remaining: int = 0  # records still under an old DEK at the end
    shredded: int = 0

    @property
    def complete(self) -> bool:
        return not self.unreadable and not self.remaining


def active_data_keys(*, organization: Organization, region=None, purpose=None, scope_ref=None) -> QuerySet[DataKey]:
    keys = DataKey.objects.filter(organization=organization, retired_at__isnull=True, shredded_at__isnull=True)
    filters = {"region": region, "purpose": purpose, "scope_ref": scope_ref}
    return keys.filter(**{name: value for name, value in filters.items() if value is not None})


def retire_data_keys(*, organization: Organization, region=None, purpose=None, scope_ref=None, actor) -> int:
    """No new value is sealed under the matching active DEKs from now on; returns how many were retired."""
    with transaction.atomic():
        count = active_data_keys(
            organization=organization, region=region, purpose=purpose, scope_ref=scope_ref
        ).update(retired_at=timezone.now())
        audit_record(
            actor=actor, organization=organization, action="encryption_key.data_keys_retired",
            details={"region": region, "purpose": purpose, "scope_ref": scope_ref, "data_keys": count},
        )
    keyring.invalidate_everywhere()
    return count


def reencrypt_scope(*, organization: Organization, region: str, purpose: str, scope_ref: str, actor,
                    batch_size: int = BATCH_SIZE,
                    on_progress: Callable[[int, int], None] | None = None) -> ReencryptResult:
    """Re-encrypt every record of one scope under a fresh DEK (batched), then shred the scope's old DEKs.

    The old DEKs are shredded only when every value was re-encrypted; a value that cannot be read
    (its key revoked) keeps them alive, and the result says why.
    """
    old = DataKey.objects.filter(
        organization=organization, region=region, purpose=purpose, scope_ref=scope_ref, shredded_at__isnull=True
    )
    old_ids = set(old.values_list("pk", flat=True))
    result = ReencryptResult(old_data_keys=len(old_ids))
    if not old_ids:
        return result
    retire_data_keys(organization=organization, region=region, purpose=purpose, scope_ref=scope_ref, actor=actor)
    unreadable_refs: set[tuple] = set()
    for _ in range(MAX_PASSES):
        refs = [r for r in records_under(old_ids, organization_id=organization.pk) if _key(r) not in unreadable_refs]
        if not refs:
            break
        for done, batch in _batches(refs, batch_size):
            _reencrypt_batch(batch, result, unreadable_refs)
            if on_progress is not None:
                on_progress(done, len(refs))
    call_log.flush()
    result.remaining = sum(1 for _ in records_under(old_ids, organization_id=organization.pk))
    if result.complete:
        result.shredded = shred_data_keys(  # exactly the old ones: the scope's fresh DEK matches `old` by now
            queryset=DataKey.objects.filter(pk__in=old_ids), actor=actor, reason="scope re-encrypted under a fresh data key"
        )
    audit_record(
        actor=actor, organization=organization, action="encryption_key.scope_reencrypted",
        details={"region": region, "purpose": purpose, "scope_ref": scope_ref, "records": result.records,
                 "values": result.values, "unreadable": dict(result.unreadable), "remaining": result.remaining,
                 "old_data_keys_shredded": result.shredded},
    )
    return result


def _key(ref: RecordRef) -> tuple:
    return (ref.model._meta.label, ref.pk)


def _batches(refs: list[RecordRef], size: int):
    by_model: dict[type, list[RecordRef]] = defaultdict(list)
    for ref in refs:
        by_model[ref.model].append(ref)
    done = 0
    for group in by_model.values():
        for start in range(0, len(group), size):
            batch = group[start:start + size]
            done += len(batch)
            yield done, batch


def _reencrypt_batch(batch: list[RecordRef], result: ReencryptResult, unreadable_refs: set[tuple]) -> None:
    """Re-seal one batch under the scope's fresh DEK. Every KMS call (Decrypt of the old DEKs, GenerateDataKey
    of the fresh one) happens before the write transaction: on SQLite a transaction holds the whole database's
    write lock, so a slow KMS call inside it would stall every other writer (ingest, workers starting up)."""
    model = batch[0].model
    read: dict = {}  # pk -> {field: (envelope read, plaintext)}
    rows = model._base_manager.in_bulk([ref.pk for ref in batch])
    for ref in batch:
        row = rows.get(ref.pk)
        if row is None:  # deleted meanwhile
            continue
        for name in ref.fields:
            sealed = getattr(row, name)
            if not isinstance(sealed, SealedValue):
                continue
            revealed = sealed.reveal_or_error()
            if not revealed.ok:
                result.unreadable[revealed.error.code.value] += 1
                unreadable_refs.add(_key(ref))
                continue
            read.setdefault(ref.pk, {})[name] = (sealed.envelope, revealed.value)
    if not read:
        return
    keyring.active_cipher(rows[next(iter(read))].encryption_scope())  # the fresh DEK, leased for this process
    with transaction.atomic():
        current = model._base_manager.select_for_update().in_bulk(list(read))
        for pk, fields in read.items():
            row = current.get(pk)
            if row is None:
                continue
            changed = []
            for name, (envelope, value) in fields.items():
                sealed = getattr(row, name)
                if not isinstance(sealed, SealedValue) or sealed.envelope != envelope:
                    continue  # rewritten since it was read (under the fresh DEK): keep the newer value
                setattr(row, name, value)  # sealed again on save, under the scope's fresh DEK
                changed.append(name)
            if changed:
                row.save(update_fields=changed)
                result.records += 1
                result.values += len(changed)
