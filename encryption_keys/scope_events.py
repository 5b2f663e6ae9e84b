"""Security events for values refused because their row was moved to another tenant or scope.

When a value names a data key of another organization, region, purpose or scope than its row's
`encryption_scope()`, the keyring refuses it (`integrity`) and reports it here. Each report becomes an
`encryption.scope_mismatch` event in the audit log of the data key's organization and, when the row now
belongs to another one, of that organization too. Details name the model, field, row, data key and both
scopes — never plaintext. A page of a thousand moved rows is one event: a DEK and row scope are reported
at most once per `SCOPE_MISMATCH_EVENT_SECONDS` (through the shared cache, so across processes too).
"""

from __future__ import annotations

import hashlib
import logging
import uuid

from django.core.cache import cache
from django.db import DatabaseError, transaction

from encryption_keys.envelope import ScopeMismatch

logger = logging.getLogger(__name__)

ACTION = "encryption.scope_mismatch"
SCOPE_MISMATCH_EVENT_SECONDS = 300


def record(reports: list[tuple[ScopeMismatch, object, int]]) -> int:
    """Write the events of (mismatch, one refused SealedValue, how many of the batch) reports; returns how
    many reports were written (the others were reported within the rate-limit window)."""
    written = 0
    for mismatch, value, count in reports:
        if not cache.add(_rate_key(mismatch), True, timeout=SCOPE_MISMATCH_EVENT_SECONDS):
            continue
        logger.warning("encryption: refused %s value(s) of %s.%s: %s", count, value.owner._meta.label_lower,
                       value.field_name, mismatch.detail)
        try:
            with transaction.atomic():  # a savepoint: a failed write never breaks the reader's transaction
                _write(mismatch, value, count)
        except DatabaseError:
            logger.exception("encryption: could not write the scope-mismatch security event")
            cache.delete(_rate_key(mismatch))
            continue
        written += 1
    return written


def _write(mismatch: ScopeMismatch, value, count: int) -> None:
    from konnect_admin.models import Organization
    from konnect_admin.services import audit_record

    key_scope, row_scope = mismatch.key_scope, mismatch.row_scope
    wanted = list(dict.fromkeys(uuid.UUID(scope.organization) for scope in (key_scope, row_scope) if scope is not None))
    organizations = Organization.objects.in_bulk(wanted)
    owner = value.owner
    details = {
        "model": owner._meta.label_lower,
        "field": value.field_name,
        "pk": str(owner.pk),
        "data_key_id": str(mismatch.dek_id),
        "data_key_scope": key_scope.as_dict() if key_scope is not None else None,
        "row_scope": row_scope.as_dict(),
        "differences": list(mismatch.differences),
        "values_refused": count,
    }
    for organization_id in wanted:  # the data key's organization first, then the row's if another
        if organization_id in organizations:
            audit_record(actor=None, organization=organizations[organization_id], action=ACTION, target=owner,
                         details=details)


def _rate_key(mismatch: ScopeMismatch) -> str:
    row_scope = "|".join(mismatch.row_scope.as_dict().values())
    digest = hashlib.sha256(row_scope.encode()).hexdigest()[:32]
    return f"encryption_keys:scope_mismatch:{mismatch.dek_id}:{digest}"

