"""Which KMS key protects a control plane's vault, and "Protect with CMEK" for older control planes.

Konnect puts a control plane's vault secrets under the organization's CMEK only if the CMEK was linked
before the control plane was created. We record that decision at creation (VaultProtection), and let an
Org Admin move an older control plane under the CMEK by re-wrapping its vault DEKs: KMS ReEncrypt (the DEK
never leaves KMS), or Decrypt + Encrypt when the key policy refuses ReEncrypt. Secret values are not touched:
only the wrapping of their data keys changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Count
from django.utils import timezone

from encryption_keys import keyring
from encryption_keys.envelope import EnvelopeError
from encryption_keys.lifecycle.rewrap import DECRYPT_ENCRYPT, rewrap_data_key
from encryption_keys.models import DataKey, EncryptionKey, Purpose
from konnect_admin.models import ControlPlane, User
from konnect_admin.permissions import Action, require
from konnect_admin.services import audit_record
from vault.models import ConfigStore, VaultProtection

logger = logging.getLogger(__name__)


class ProtectionRefused(Exception):
    """The control plane cannot be put under a CMEK (none is linked for its region)."""


def record_vault_protection(sender, instance: ControlPlane, created: bool, raw: bool = False, **kwargs) -> None:
    """post_save of ControlPlane: decide, at creation, which key protects the new control plane's vault."""
    if created and not raw:
        VaultProtection.decide(instance)


def vault_data_keys(control_plane: ControlPlane):
    """The live (not shredded) DEKs of the control plane's config stores."""
    stores = ConfigStore.objects.filter(control_plane=control_plane).values_list("pk", flat=True)
    return DataKey.objects.filter(
        organization_id=control_plane.organization_id,
        region=control_plane.region,
        purpose=Purpose.VAULT_SECRET,
        scope_ref__in=[keyring.control_plane_scope_ref(control_plane.pk, store) for store in stores],
        shredded_at__isnull=True,
    )


@dataclass
class ProtectionSummary:
    under_cmek: bool
    cmek: EncryptionKey | None
    protecting_arn: str | None
    data_keys: list[dict] = field(default_factory=list)  # [{"arn", "count", "is_cmek"}]
    error: str = ""

    @property
    def pending(self) -> int:
        """DEKs not (yet) wrapped by the linked CMEK."""
        if self.cmek is None:
            return 0
        return sum(item["count"] for item in self.data_keys if not item["is_cmek"])

    @property
    def can_migrate(self) -> bool:
        return self.cmek is not None and (not self.under_cmek or self.pending > 0)

    @property
    def protected_by_cmek(self) -> bool:
        return bool(self.protecting_arn and self.cmek and self.protecting_arn == self.cmek.key_arn)

    @property
    def key_label(self) -> str:
        return "Customer-managed key (CMEK)" if self.protected_by_cmek else "Platform key"


def protection_summary(control_plane: ControlPlane) -> ProtectionSummary:
    protection = VaultProtection.for_control_plane(control_plane)
    cmek = EncryptionKey.objects.filter(
        organization_id=control_plane.organization_id, region=control_plane.region
    ).first()
    summary = ProtectionSummary(under_cmek=protection.under_cmek, cmek=cmek, protecting_arn=None)
    try:
        summary.protecting_arn = protection.wrapping_key_override() or keyring.wrapping_key_arn(
            organization_id=control_plane.organization_id, region=control_plane.region
        )
    except EnvelopeError as error:
        summary.error = error.message
    counts = vault_data_keys(control_plane).values("wrapping_key_arn").annotate(count=Count("id"))
    summary.data_keys = [
        {"arn": row["wrapping_key_arn"], "count": row["count"],
         "is_cmek": cmek is not None and row["wrapping_key_arn"] == cmek.key_arn}
        for row in counts.order_by("wrapping_key_arn")
    ]
    return summary


@dataclass
class ProtectionOutcome:
    rewrapped: int = 0
    fallbacks: int = 0  # DEKs re-wrapped by Decrypt + Encrypt because ReEncrypt was refused
    already_protected: bool = False


def linked_cmek(*, actor: User, control_plane: ControlPlane) -> EncryptionKey:
    """The CMEK the vault would move under; raises PermissionDenied (not an Org Admin) or ProtectionRefused."""
    require(actor, Action.KEY_MANAGE, control_plane.organization)
    cmek = EncryptionKey.objects.filter(organization_id=control_plane.organization_id,
                                        region=control_plane.region).first()
    if cmek is None:
        raise ProtectionRefused(
            f"No customer-managed key is linked for the {control_plane.get_region_display()} region: link one first."
        )
    return cmek


def is_protected(control_plane: ControlPlane, cmek: EncryptionKey) -> bool:
    """Under the CMEK already, with every vault DEK wrapped by it: nothing to do."""
    return VaultProtection.for_control_plane(control_plane).under_cmek and not (
        vault_data_keys(control_plane).exclude(wrapping_key_arn=cmek.key_arn).exists())


def vault_protect_with_cmek(*, actor: User, control_plane: ControlPlane,
                            on_progress: Callable[[ProtectionOutcome], None] | None = None) -> ProtectionOutcome:
    """Put an older control plane's vault under the organization's CMEK. Idempotent; audited.

    Raises ProtectionRefused without a linked CMEK, and an EnvelopeError (typed KMS error) when a DEK cannot be
    re-wrapped; the DEKs done so far stay done and running it again carries on. `on_progress` is called after
    each data key moved (a task worker records the count and renews its lease there).
    """
    organization = control_plane.organization
    cmek = linked_cmek(actor=actor, control_plane=control_plane)
    protection = VaultProtection.for_control_plane(control_plane)
    outcome = ProtectionOutcome()
    if is_protected(control_plane, cmek):
        outcome.already_protected = True
        return outcome
    try:
        _rewrap_all(control_plane, cmek.key_arn, outcome, on_progress)
        VaultProtection.objects.filter(pk=protection.pk).update(
            under_cmek=True, migrated_at=timezone.now(), migrated_by=actor
        )
        keyring.invalidate_everywhere()  # no writer keeps a lease on the platform-key scope
        _rewrap_all(control_plane, cmek.key_arn, outcome, on_progress)  # DEKs a writer made before the switch
    except EnvelopeError as error:
        audit_record(actor=actor, organization=organization, action="vault.cmek_protection_failed",
                     target=control_plane, details={"code": error.code.value, "data_keys_rewrapped": outcome.rewrapped,
                                                    "key_arn": cmek.key_arn})
        raise
    audit_record(actor=actor, organization=organization, action="vault.protected_with_cmek", target=control_plane,
                 details={"key_arn": cmek.key_arn, "data_keys_rewrapped": outcome.rewrapped,
                          "decrypt_encrypt_fallbacks": outcome.fallbacks})
    keyring.invalidate_everywhere()
    logger.info("vault of control plane %s moved under its CMEK: %d data keys re-wrapped",
                control_plane.pk, outcome.rewrapped)
    return outcome


def _rewrap_all(control_plane: ControlPlane, destination_arn: str, outcome: ProtectionOutcome,
                on_progress: Callable[[ProtectionOutcome], None] | None) -> None:
    pending = vault_data_keys(control_plane).exclude(wrapping_key_arn=destination_arn)
    for data_key_id in list(pending.values_list("pk", flat=True)):
        method = _rewrap(data_key_id, destination_arn)
        if method is not None:
            outcome.rewrapped += 1
            outcome.fallbacks += method == DECRYPT_ENCRYPT
            if on_progress is not None:
                on_progress(outcome)


def _rewrap(data_key_id, destination_arn: str) -> str | None:
    """Re-wrap one DEK under `destination_arn`; None when there is nothing to do (or another run moved it first).

    The KMS call is made outside any transaction (on SQLite a transaction holds the database's write lock, and a
    slow KMS must not stall every writer); the row is then stored by an UPDATE guarded by the wrapping it was read
    with, so each DEK moves once, whatever else runs."""
    row = DataKey.objects.filter(pk=data_key_id, shredded_at__isnull=True).first()
    if row is None or not row.wrapped or row.wrapping_key_arn == destination_arn:
        return None
    wrapped, method = rewrap_data_key(source_ref=row.wrapping_key_arn, destination_ref=destination_arn,
                                      wrapped=bytes(row.wrapped), context=row.encryption_context(),
                                      organization_id=row.organization_id)
    moved = DataKey.objects.filter(
        pk=data_key_id, shredded_at__isnull=True, wrapping_key_arn=row.wrapping_key_arn
    ).update(wrapping_key_arn=destination_arn, wrapped=wrapped, rewrapped_at=timezone.now())
    return method if moved else None
