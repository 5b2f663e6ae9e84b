"""Writes of the encryption-keys app: link, update, unlink a customer-managed key, and check its health.

Keyword-only, typed, audited. KMS calls happen outside database transactions; the rows change inside one.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from encryption_keys import call_log, health, key_state, keyring
from encryption_keys.models import DataKey, EncryptionKey, KeyStatus, KeyStatusChange
from encryption_keys.ownership import KeyInUse, refuse_key_in_use  # noqa: F401 - KeyInUse: for callers
from encryption_keys.verification import Checklist, verify_key
from konnect_admin.models import Organization, User
from konnect_admin.permissions import Action, require
from konnect_admin.services import audit_record


class KeyVerificationFailed(Exception):
    """At least one check of the verification checklist failed; nothing was linked."""

    def __init__(self, checklist: Checklist):
        super().__init__("; ".join(f"{c.title}: {c.explanation}" for c in checklist.failures))
        self.checklist = checklist


class KeyNeedsConfirmation(Exception):
    """The key passed every check but some warned, and the caller asked to confirm warnings it has not seen:
    nothing was linked. The pages show the checklist and ask "Link anyway?"; the API accepts warnings."""

    def __init__(self, checklist: Checklist):
        super().__init__("; ".join(f"{c.title}: {c.explanation}" for c in checklist.warnings))
        self.checklist = checklist


def refuse_unconfirmed_warnings(checklist: Checklist, accepted_warnings: Collection[str] | None) -> None:
    """Raise KeyNeedsConfirmation when ``checklist`` warns about a check not in ``accepted_warnings``
    (None accepts every warning: Kong's API semantics, where a PUT links a key with warnings)."""
    if accepted_warnings is None:
        return
    if any(check.id not in accepted_warnings for check in checklist.warnings):
        raise KeyNeedsConfirmation(checklist)


class KeyAlreadyLinked(Exception):
    """The organization already has a key in this region (one key per organization per region)."""


@dataclass(frozen=True)
class LinkedKey:
    key: EncryptionKey
    checklist: Checklist


def key_replacement():
    """`(encryption_keys.lifecycle.replace_key, the errors it raises)`, or None while key replacement
    (the Key lifecycle issue) is not installed."""
    try:
        lifecycle = importlib.import_module("encryption_keys.lifecycle")
        replace_key = lifecycle.replace_key
    except (ImportError, AttributeError):
        return None
    errors = [KeyVerificationFailed]
    for name in ("KeyVerificationFailed", "KeyNeedsConfirmation", "KeyReplacementError"):
        try:
            errors.append(getattr(lifecycle, name))
        except (ImportError, AttributeError):
            continue
    return replace_key, tuple(errors)


def _invalidate_data_key_caches() -> None:
    """New DEKs must be wrapped by the key now linked: drop cached leases here, in other processes
    shortly, and again once the transaction commits (when the change becomes visible to them)."""
    keyring.invalidate_everywhere()
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(keyring.invalidate_everywhere)


def link_key(
    *, organization: Organization, region: str, key_ref: str, name: str, description: str = "", actor: User,
    accepted_warnings: Collection[str] | None = None,
) -> LinkedKey:
    """Verify `key_ref` and link it as the organization's key for `region`.

    Raises PermissionDenied, KeyAlreadyLinked, KeyInUse (another organization's key, before any KMS call) or
    KeyVerificationFailed (carrying the checklist), or KeyNeedsConfirmation when a check warns that is not in
    ``accepted_warnings`` (check ids the person confirmed; None accepts all).
    """
    require(actor, Action.KEY_MANAGE, organization)
    if EncryptionKey.objects.filter(organization=organization, region=region).exists():
        raise KeyAlreadyLinked(f"A key is already linked for region {region}.")
    refuse_key_in_use(organization=organization, region=region, key_ref=key_ref)
    checklist = verify_key(organization=organization, region=region, key_ref=key_ref)
    if not checklist.ok:
        raise KeyVerificationFailed(checklist)
    refuse_unconfirmed_warnings(checklist, accepted_warnings)
    now = timezone.now()
    rotation_off = checklist.metadata.get("rotation_enabled") is False
    try:
        with transaction.atomic():
            key = EncryptionKey.objects.create(
                organization=organization, region=region, name=name, description=description,
                key_ref=checklist.key_ref, status=KeyStatus.ROTATION_DISABLED if rotation_off else KeyStatus.HEALTHY,
                last_checked_at=now, kms_metadata=checklist.metadata, linked_by=actor, linked_at=now,
            )
            KeyStatusChange.objects.create(key=key, status=key.status, detail="Linked after verification.")
            audit_record(actor=actor, organization=organization, action="encryption_key.linked", target=key,
                         details={"region": region, "key_ref": key.key_ref, "checks": checklist.verdicts()})
    except IntegrityError:
        # Another link committed while this one was verified: of this region, or of this very key.
        refuse_key_in_use(organization=organization, region=region, key_ref=checklist.key_ref)
        raise KeyAlreadyLinked(f"A key is already linked for region {region}.") from None
    _invalidate_data_key_caches()
    return LinkedKey(key=key, checklist=checklist)


@transaction.atomic
def key_update(*, key: EncryptionKey, name: str, description: str, actor: User) -> EncryptionKey:
    """Rename or re-describe a linked key (the ARN stays: a new ARN is a replacement)."""
    require(actor, Action.KEY_MANAGE, key.organization)
    changes = {f: v for f, v in (("name", name), ("description", description)) if getattr(key, f) != v}
    if changes:
        for field, value in changes.items():
            setattr(key, field, value)
        key.save(update_fields=[*changes, "updated_at"])
        audit_record(actor=actor, organization=key.organization, action="encryption_key.updated", target=key,
                     details={"fields": sorted(changes)})
    return key


def unlink_key(*, key: EncryptionKey, actor: User) -> None:
    """New data goes back under the platform key; data keys already wrapped by this key stay so."""
    require(actor, Action.KEY_MANAGE, key.organization)
    with transaction.atomic():
        still_wrapped = DataKey.objects.filter(
            organization=key.organization, region=key.region, wrapping_key_ref=key.key_ref, shredded_at__isnull=True
        ).count()
        audit_record(actor=actor, organization=key.organization, action="encryption_key.unlinked", target=key,
                     details={"region": key.region, "key_ref": key.key_ref, "data_keys_still_wrapped": still_wrapped})
        key.delete()
    _invalidate_data_key_caches()


@dataclass(frozen=True)
class HealthCheck:
    key: EncryptionKey
    previous_status: str
    reading: health.KeyHealth

    @property
    def changed(self) -> bool:
        return self.previous_status != self.key.status


def check_key_health(*, key: EncryptionKey, actor: User | None = None) -> HealthCheck:
    """Re-read the key's state in KMS and store it; `actor` None is the system (the check_keys command)."""
    if actor is not None:
        require(actor, Action.KEY_MANAGE, key.organization)
    reading = health.read_key_health(key_ref=key.key_ref, organization_id=key.organization_id, region=key.region,
                                     previous_metadata=key.kms_metadata)
    return record_key_health(key=key, reading=reading, actor=actor)


def record_key_health(*, key: EncryptionKey, reading: health.KeyHealth, actor: User | None = None,
                      source: str = "check") -> HealthCheck:
    """Store a reading of the key's state: the one place a key's status changes (a check, the scheduled sweep,
    or a data-path failure; `source` says which). A change is kept in the key's history and audited once; a
    revoked key's cached data keys are dropped in every process."""
    with transaction.atomic():
        key = EncryptionKey.objects.select_for_update().select_related("organization").get(pk=key.pk)
        previous = key.status
        key.status, key.deletion_date, key.last_error = reading.status, reading.deletion_date, reading.error
        key.last_checked_at = timezone.now()
        if reading.metadata:
            key.kms_metadata = reading.metadata
        key.save(update_fields=["status", "deletion_date", "last_error", "last_checked_at", "kms_metadata",
                                "updated_at"])
        details = {"status": key.status, "previous_status": previous, "key_ref": key.key_ref, "source": source}
        if previous != key.status:
            KeyStatusChange.objects.create(key=key, status=key.status, previous_status=previous,
                                           detail=reading.error[:500])
            audit_record(actor=actor, organization=key.organization, action="encryption_key.status_changed",
                         target=key, details=details)
        if source != "data_path":  # a data-path observation is audited by its status change alone
            audit_record(actor=actor, organization=key.organization, action="encryption_key.checked", target=key,
                         details=details)
    key_state.remember_status(key_ref=key.key_ref, key_id=key.pk, status=key.status)
    if key.status in health.REVOKED:
        keyring.data_key_cache().evict_wrapping_key(key.key_ref)
        keyring.invalidate_everywhere()
    elif previous in health.REVOKED:
        keyring.invalidate_everywhere()  # drop cached failures: the key works again
    if not transaction.get_connection().in_atomic_block:
        call_log.flush()  # the key-usage log shows the check's calls at once (commands have no request end)
    return HealthCheck(key=key, previous_status=previous, reading=reading)
