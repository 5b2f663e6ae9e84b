"""Reads of the encryption-keys app, scoped to the caller's organization and roles.

Another organization's key is invisible (404); a key the caller may not read is 403.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.shortcuts import get_object_or_404
from django.utils import timezone

from encryption_keys import call_log, health
from encryption_keys.models import DataKey, EncryptionKey, KmsCall, Purpose
from konnect_admin.models import Organization, User
from konnect_admin.permissions import Action, require

SCOPE_NOUNS = {
    Purpose.DEBUGGER_PAYLOAD: ("debug session", "debug sessions"),
    Purpose.DEBUGGER_LOG: ("debug session", "debug sessions"),
    Purpose.VAULT_SECRET: ("config store", "config stores"),
}


def key_list(*, user: User, organization: Organization) -> QuerySet[EncryptionKey]:
    require(user, Action.KEY_VIEW, organization)
    return EncryptionKey.objects.filter(organization=organization).select_related("linked_by").order_by("region")


def key_get(*, user: User, organization: Organization, pk, action: Action = Action.KEY_VIEW) -> EncryptionKey:
    key = get_object_or_404(
        EncryptionKey.objects.filter(organization=organization).select_related("organization", "linked_by"), pk=pk
    )
    require(user, action, organization)
    return key


def key_for_region(
    *, user: User, organization: Organization, region: str, action: Action = Action.KEY_VIEW
) -> EncryptionKey | None:
    require(user, action, organization)
    return EncryptionKey.objects.filter(organization=organization, region=region).first()


def unhealthy_keys(*, organization: Organization) -> list[EncryptionKey]:
    """Keys that earn the organization-wide banner; every member sees it (their data is affected)."""
    return list(EncryptionKey.objects.filter(organization=organization, status__in=health.UNHEALTHY))


@dataclass(frozen=True)
class PurposeInventory:
    purpose: str
    label: str
    data_keys: int
    active: int
    shredded: int
    scopes: int
    scope_nouns: tuple[str, str]

    @property
    def scope_label(self) -> str:
        return f"{self.scopes} {self.scope_nouns[0] if self.scopes == 1 else self.scope_nouns[1]}"


def data_key_inventory(*, organization: Organization, region: str, wrapping_key_ref: str) -> list[PurposeInventory]:
    """What one KMS key protects in a region: data keys per purpose (records live in the apps that own them)."""
    now = timezone.now()
    counts = {
        row["purpose"]: row
        for row in DataKey.objects.filter(organization=organization, region=region, wrapping_key_ref=wrapping_key_ref)
        .values("purpose")
        .annotate(
            total=Count("id"),
            shredded=Count("id", filter=Q(shredded_at__isnull=False)),
            active=Count("id", filter=Q(shredded_at__isnull=True, retired_at__isnull=True, encrypt_until__gt=now)),
            scopes=Count("scope_ref", distinct=True, filter=Q(shredded_at__isnull=True)),
        )
    }
    inventory = []
    for purpose in Purpose:
        row = counts.get(purpose.value, {})
        inventory.append(PurposeInventory(
            purpose=purpose.value, label=purpose.label, data_keys=row.get("total", 0), active=row.get("active", 0),
            shredded=row.get("shredded", 0), scopes=row.get("scopes", 0), scope_nouns=SCOPE_NOUNS[purpose],
        ))
    return inventory


def key_usage_log(
    *, user: User, organization: Organization, key: EncryptionKey, operation: str = "", outcome: str = ""
) -> QuerySet[KmsCall]:
    """The key-usage log: this organization's KMS calls naming the key, newest first."""
    require(user, Action.KEY_VIEW, organization)
    call_log.flush()
    calls = KmsCall.objects.filter(organization=organization, key_ref=key.key_ref).annotate(
        purpose=KeyTextTransform("konnect:purpose", "encryption_context")
    )
    if operation:
        calls = calls.filter(operation=operation)
    if outcome:
        calls = calls.filter(outcome=outcome)
    return calls


def key_usage_choices(*, organization: Organization, key: EncryptionKey) -> tuple[list[str], list[str]]:
    """The operations and outcomes that occur in the key's log (for the filter menus)."""
    call_log.flush()
    calls = KmsCall.objects.filter(organization=organization, key_ref=key.key_ref).order_by()
    operations = sorted(set(calls.values_list("operation", flat=True).distinct()))
    outcomes = sorted(set(calls.values_list("outcome", flat=True).distinct()))
    return operations, outcomes
