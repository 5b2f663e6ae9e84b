"""The records a set of data keys protects, found generically across every model with encrypted fields.

The envelope of each value names its DEK (DESIGN.md §3), so a scan reads only the envelope header: no
KMS call, no decryption. Used by dry runs (how many records a change touches) and by scope re-encryption.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.apps import apps
from django.db.models import Model, Q

from encryption_keys.envelope import DecryptionError, peek_dek_id
from encryption_keys.fields import EncryptedField

CHUNK_SIZE = 2000


@dataclass(frozen=True, slots=True)
class EncryptedModel:
    model: type[Model]
    fields: tuple[EncryptedField, ...]

    @property
    def label(self) -> str:
        return self.model._meta.label


@dataclass(frozen=True, slots=True)
class RecordRef:
    """One row, and which of its encrypted fields are sealed under one of the data keys asked about."""

    model: type[Model]
    pk: object
    fields: tuple[str, ...]


def encrypted_models() -> list[EncryptedModel]:
    found = []
    for model in apps.get_models():
        fields = tuple(f for f in model._meta.concrete_fields if isinstance(f, EncryptedField))
        if fields:
            found.append(EncryptedModel(model, fields))
    return found


def records_under(data_key_ids: Iterable[uuid.UUID], *, organization_id=None) -> Iterator[RecordRef]:
    """Every row with a value sealed under one of `data_key_ids`.

    `organization_id` only narrows the scan on models that have an `organization` or `control_plane`
    field; the match itself is always the DEK id in the envelope (DEK ids are unique across tenants).
    """
    wanted = set(data_key_ids)
    if not wanted:
        return
    for entry in encrypted_models():
        rows = entry.model._base_manager.filter(_narrowing(entry, organization_id))
        names = [f.attname for f in entry.fields]
        for pk, *envelopes in rows.values_list("pk", *names).iterator(chunk_size=CHUNK_SIZE):
            hits = tuple(
                field.name for field, envelope in zip(entry.fields, envelopes, strict=True)
                if envelope is not None and _dek_of(envelope) in wanted
            )
            if hits:
                yield RecordRef(entry.model, pk, hits)


def count_records(data_key_ids: Iterable[uuid.UUID], *, organization_id=None) -> Counter[str]:
    """Rows per model label with a value under one of `data_key_ids`."""
    return Counter(ref.model._meta.label for ref in records_under(data_key_ids, organization_id=organization_id))


def _narrowing(entry: EncryptedModel, organization_id) -> Q:
    present = Q()
    for field in entry.fields:
        present |= Q(**{f"{field.name}__isnull": False})
    if organization_id is None:
        return present
    names = {f.name for f in entry.model._meta.concrete_fields}
    if "organization" in names:
        return present & Q(organization_id=organization_id)
    if "control_plane" in names:
        return present & Q(control_plane__organization_id=organization_id)
    return present


def _dek_of(envelope: bytes) -> uuid.UUID | None:
    try:
        return peek_dek_id(bytes(envelope))
    except DecryptionError:
        return None
