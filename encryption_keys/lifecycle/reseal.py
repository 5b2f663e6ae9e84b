"""Upgrading v1 envelopes to v2 (docs/envelope.md): every encrypted field of every model, in place.

A v1 value is opened with its row's v1 AAD and sealed again as v2 **under the same data key** (the header
names the same DEK id), so crypto-shredding stays exact and no DEK is created. Data keys are unwrapped
through the keyring's cache: one KMS Decrypt per distinct DEK (per cache lifetime), never one per record.
A value whose data key belongs to another scope than its row's (a moved row) is refused and counted —
never re-sealed into the row's new scope — and reported as a security event; so is a value that cannot be
read (key revoked, DEK shredded, tampered).

Rows are walked in primary-key order (keyset pagination), one transaction per batch. Re-running skips v2
values, so a run killed midway finishes when started again.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection, transaction

from encryption_keys import call_log, keyring, scope_events
from encryption_keys.envelope import VERSION_V1, DecryptionError, ScopeMismatch, peek_dek_id
from encryption_keys.fields import EncryptedField, SealedValue
from encryption_keys.lifecycle.records import EncryptedModel, encrypted_models
from encryption_keys.models import DataKey

BATCH_SIZE = 500
REFUSED = "scope_mismatch"


@dataclass
class FieldCounts:
    """What one model field holds, and what the run did to it."""

    v1: int = 0  # legacy values found (in a dry run: what would be upgraded or refused)
    v2: int = 0  # already current, skipped
    upgraded: int = 0
    not_upgraded: Counter = field(default_factory=Counter)  # reason (scope_mismatch or an error code) → values

    @property
    def remaining(self) -> int:
        return self.v1 - self.upgraded


@dataclass
class ResealReport:
    dry_run: bool
    fields: dict[str, FieldCounts] = field(default_factory=dict)  # "app_label.model.field" → counts
    upgraded_by_organization: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def counts(self, label: str) -> FieldCounts:
        return self.fields.setdefault(label, FieldCounts())

    @property
    def not_upgraded(self) -> Counter:
        total = Counter()
        for counts in self.fields.values():
            total.update(counts.not_upgraded)
        return total

    @property
    def complete(self) -> bool:
        return not self.not_upgraded


def reseal_count() -> int:
    """Rows with at least one encrypted value (what a run walks), across every model."""
    return sum(_rows(entry).count() for entry in encrypted_models())


def reseal_values(*, yes: bool = False, batch_size: int = BATCH_SIZE, actor=None,
                  on_progress: Callable[[int], None] | None = None) -> ResealReport:
    """Upgrade every v1 value to v2 (with `yes`), or count what would be done (dry run, no KMS call)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = ResealReport(dry_run=not yes)
    walked = 0
    for entry in encrypted_models():
        for batch in _batches(entry, batch_size):
            if yes:
                _upgrade(entry, batch, report)
            else:
                _survey(entry, batch, report)
            walked += len(batch)
            if on_progress is not None:
                on_progress(walked)
    call_log.flush()
    if yes:
        _audit(report, actor)
    return report


# --- walking ------------------------------------------------------------------------------------------------


def _rows(entry: EncryptedModel):
    present = None
    for encrypted in entry.fields:
        condition = {f"{encrypted.name}__isnull": False}
        present = entry.model._base_manager.filter(**condition) if present is None else (
            present | entry.model._base_manager.filter(**condition))
    return present


def _batches(entry: EncryptedModel, size: int):
    """Lists of (pk, envelope or None per field), in pk order; each batch read after the previous one ran."""
    names = [f.attname for f in entry.fields]
    last = None
    while True:
        rows = _rows(entry).order_by("pk")
        if last is not None:
            rows = rows.filter(pk__gt=last)
        batch = [(pk, [bytes(e) if e is not None else None for e in envelopes])
                 for pk, *envelopes in rows.values_list("pk", *names)[:size]]
        if not batch:
            return
        yield batch
        last = batch[-1][0]


def _legacy(entry: EncryptedModel, batch, report: ResealReport) -> dict[object, list[EncryptedField]]:
    """Count v1 and v2 values of the batch; the v1 ones by row."""
    legacy: dict[object, list[EncryptedField]] = {}
    for pk, envelopes in batch:
        for encrypted, envelope in zip(entry.fields, envelopes, strict=True):
            if envelope is None:
                continue
            counts = report.counts(_label(entry, encrypted))
            if envelope[:1] == bytes((VERSION_V1,)):
                counts.v1 += 1
                legacy.setdefault(pk, []).append(encrypted)
            else:
                counts.v2 += 1
    return legacy


def _instances(entry: EncryptedModel, pks, *, lock: bool) -> dict:
    rows = entry.model._base_manager.all()
    related = getattr(entry.model, "encryption_scope_related", ())
    if related:
        rows = rows.select_related(*related)
    if lock and connection.features.has_select_for_update:
        rows = rows.select_for_update(of=("self",)) if connection.features.has_select_for_update_of else (
            rows.select_for_update())
    return rows.in_bulk(list(pks))


# --- dry run: headers and DataKey rows only, no KMS ---------------------------------------------------------


def _survey(entry: EncryptedModel, batch, report: ResealReport) -> None:
    legacy = _legacy(entry, batch, report)
    if not legacy:
        return
    rows = _instances(entry, legacy, lock=False)
    values = [(getattr(rows[pk], f.name), f) for pk, fields in legacy.items() if pk in rows for f in fields]
    keys = DataKey.objects.in_bulk({_dek(value) for value, _ in values} - {None})
    for value, encrypted in values:
        reason = _refusal(value, keys.get(_dek(value)))
        if reason:
            report.counts(_label(entry, encrypted)).not_upgraded[reason] += 1


def _refusal(value: SealedValue, key: DataKey | None) -> str:
    if key is None or key.shredded_at is not None:
        return "data_key_shredded"
    return REFUSED if keyring.data_key_scope(key) != value.expected_scope() else ""


# --- upgrade: one transaction per batch -----------------------------------------------------------------------


def _upgrade(entry: EncryptedModel, batch, report: ResealReport) -> None:
    legacy = _legacy(entry, batch, report)
    if not legacy:
        return
    mismatches: dict[tuple, list] = {}
    with transaction.atomic():
        rows = _instances(entry, legacy, lock=True)
        for pk, fields in legacy.items():
            row = rows.get(pk)
            if row is None:  # deleted meanwhile: nothing left to upgrade
                for encrypted in fields:
                    report.counts(_label(entry, encrypted)).v1 -= 1
                continue
            for encrypted in fields:
                _upgrade_value(entry, row, encrypted, report, mismatches)
    if mismatches:
        scope_events.record(list(mismatches.values()))


def _upgrade_value(entry, row, encrypted: EncryptedField, report: ResealReport, mismatches: dict) -> None:
    counts = report.counts(_label(entry, encrypted))
    value = getattr(row, encrypted.name)
    if not isinstance(value, SealedValue) or value.envelope[:1] != bytes((VERSION_V1,)):
        counts.v1 -= 1  # rewritten since the batch was read: not ours to upgrade any more
        return
    try:
        scope = value.expected_scope()
        cipher = keyring.cipher_for(peek_dek_id(value.envelope), scope=scope)
        label = row._meta.label_lower
        plaintext = cipher.open_field(value.envelope, scope=scope, model_label=label, field=encrypted.name, pk=row.pk)
    except ScopeMismatch as mismatch:  # a moved row: never re-sealed into its new scope
        counts.not_upgraded[REFUSED] += 1
        mismatches.setdefault((mismatch.dek_id, mismatch.row_scope), [mismatch, value, 0])[2] += 1
        return
    except DecryptionError as error:
        counts.not_upgraded[error.code.value] += 1
        return
    upgraded = cipher.seal_field(plaintext, model_label=label, field=encrypted.name, pk=row.pk)
    del plaintext
    entry.model._base_manager.filter(pk=row.pk).update(
        **{encrypted.attname: SealedValue(upgraded, owner=row, field=encrypted)}
    )
    counts.upgraded += 1
    report.upgraded_by_organization[scope.organization][_label(entry, encrypted)] += 1


def _audit(report: ResealReport, actor) -> None:
    from konnect_admin.models import Organization
    from konnect_admin.services import audit_record

    organizations = Organization.objects.in_bulk([uuid.UUID(org) for org in report.upgraded_by_organization])
    for organization_id, upgraded in report.upgraded_by_organization.items():
        organization = organizations.get(uuid.UUID(organization_id))
        if organization is not None:
            audit_record(actor=actor, organization=organization, action="encryption.resealed",
                         details={"upgraded": dict(upgraded), "values": sum(upgraded.values()),
                                  "to_version": 2})


def _label(entry: EncryptedModel, encrypted: EncryptedField) -> str:
    return f"{entry.model._meta.label_lower}.{encrypted.name}"


def _dek(value) -> object:
    try:
        return peek_dek_id(value.envelope)
    except DecryptionError:
        return None

