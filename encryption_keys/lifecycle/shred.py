"""Crypto-shredding: destroy data keys, and every value sealed under them becomes `data_key_shredded`.

Nothing else is touched: the records keep their metadata and ciphertext, which nobody can open any more.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from encryption_keys import keyring
from encryption_keys.models import DataKey, Purpose
from konnect_admin.models import Organization
from konnect_admin.services import audit_record

DEBUGGER_PURPOSES = (Purpose.DEBUGGER_PAYLOAD, Purpose.DEBUGGER_LOG)
_CHUNK = 500


def shred_data_keys(*, queryset: QuerySet[DataKey], actor, reason: str) -> int:
    """Destroy the wrapped key material of every live DEK in `queryset`; returns how many were shredded.

    Each process drops its cached copies within GENERATION_CHECK_SECONDS (this one at once).
    """
    now = timezone.now()
    with transaction.atomic():
        rows = list(queryset.filter(shredded_at__isnull=True).select_for_update().values_list("pk", "organization_id"))
        ids = [pk for pk, _ in rows]
        for start in range(0, len(ids), _CHUNK):
            DataKey.objects.filter(pk__in=ids[start:start + _CHUNK]).update(
                shredded_at=now, wrapped=None, retired_at=Coalesce("retired_at", now)
            )
        per_organization = Counter(organization_id for _, organization_id in rows)
        for organization in Organization.objects.filter(pk__in=per_organization):
            audit_record(
                actor=actor, organization=organization, action="encryption_key.data_keys_shredded",
                details={"reason": reason, "data_keys": per_organization[organization.pk]},
            )
    cache = keyring.data_key_cache()
    for pk in ids:
        cache.evict(pk)
    if ids:
        keyring.invalidate_everywhere()
    return len(ids)


# --- what to shred -----------------------------------------------------------------------------------------


def session_data_keys(*, organization: Organization, control_plane_id, session_id) -> QuerySet[DataKey]:
    """The DEKs of one debug session of a control plane (its payload captures and request logs)."""
    scope_ref = keyring.control_plane_scope_ref(control_plane_id, session_id)
    return DataKey.objects.filter(organization=organization, purpose__in=DEBUGGER_PURPOSES, scope_ref=scope_ref)


def config_store_data_keys(*, organization: Organization, control_plane_id, config_store_id) -> QuerySet[DataKey]:
    """The DEKs of one config store of a control plane (its secrets)."""
    scope_ref = keyring.control_plane_scope_ref(control_plane_id, config_store_id)
    return DataKey.objects.filter(organization=organization, purpose=Purpose.VAULT_SECRET, scope_ref=scope_ref)


def data_keys_before(*, organization: Organization, before: datetime) -> QuerySet[DataKey]:
    """DEKs that stopped sealing new values before `before`: shredding them destroys nothing written later."""
    return DataKey.objects.filter(organization=organization).filter(
        Q(encrypt_until__lte=before) | Q(retired_at__lte=before)
    )
