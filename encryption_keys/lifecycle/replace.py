"""Replacing an organization's key with another ARN, without losing a byte.

The new ARN passes the linking checklist; then, in one transaction, the job is recorded and the
EncryptionKey points at the new ARN, so new writes use the new key from that moment. The data keys
wrapped by the old key are then re-wrapped (see rewrap.py) by a task worker (encryption_keys.tasks.rewrap_job),
or by the caller itself with `start=False` (the management command)."""

from __future__ import annotations

import logging
from collections.abc import Collection

from django.db import IntegrityError, transaction
from django.utils import timezone

from encryption_keys import keyring
from encryption_keys.lifecycle.models import RewrapJob, RewrapState
from encryption_keys.lifecycle.rewrap import data_keys_under
from encryption_keys.models import EncryptionKey, KeyStatus
from encryption_keys.ownership import KeyInUse, refuse_key_in_use
from encryption_keys.services import KeyNeedsConfirmation, KeyVerificationFailed, refuse_unconfirmed_warnings
from encryption_keys.verification import verify_key
from konnect_admin.models import Organization
from konnect_admin.permissions import Action, require
from konnect_admin.services import audit_record

__all__ = ["KeyNeedsConfirmation", "KeyReplacementError", "KeyVerificationFailed", "replace_key", "resume_rewrap"]

logger = logging.getLogger(__name__)


class KeyReplacementError(Exception):
    """The key cannot be replaced (or the job resumed) now; `code` is stable, the message is for people."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.code = code


def replace_key(*, organization: Organization, region: str, new_key_ref: str, name: str | None = None,
                description: str | None = None, actor, start: bool = True,
                accepted_warnings: Collection[str] | None = None) -> RewrapJob:
    """Switch the organization's key for `region` to `new_key_ref` and re-wrap its data keys.

    `actor` None is the platform operator on a shell (the management command); a user must be an Org Admin.
    With `start=False` the caller runs `rewrap_data_keys(job)` itself.
    Raises PermissionDenied, KeyReplacementError (also when the new key is another organization's, before
    any KMS call), KeyVerificationFailed (carrying the checklist), or KeyNeedsConfirmation when a check warns
    that is not in ``accepted_warnings`` (None accepts every warning, as the API does).
    """
    if actor is not None:
        require(actor, Action.KEY_MANAGE, organization)
    key = linked_key(organization=organization, region=region)
    new_key_ref = (new_key_ref or "").strip()
    if new_key_ref == key.key_ref:
        raise KeyReplacementError("This key is already the linked key for this region.", code="same_key")
    _refuse_if_unfinished(organization, region, key.key_ref)
    _refuse_key_in_use(organization, region, new_key_ref)
    checklist = verify_key(organization=organization, region=region, key_ref=new_key_ref)
    if not checklist.ok:
        raise KeyVerificationFailed(checklist)
    refuse_unconfirmed_warnings(checklist, accepted_warnings)
    try:
        job = _switch_key(organization, region, key, checklist, actor=actor, name=name, description=description)
    except IntegrityError:  # another organization linked the new key while it was verified
        _refuse_key_in_use(organization, region, checklist.key_ref)
        raise
    _switch_writers()
    if start:
        _launch(job)
    return job


def _switch_key(organization, region, key, checklist, *, actor, name, description) -> RewrapJob:
    with transaction.atomic():
        key = EncryptionKey.objects.select_for_update().get(pk=key.pk)
        _refuse_if_unfinished(organization, region, key.key_ref)
        job = RewrapJob.objects.create(
            organization=organization, region=region, old_key_ref=key.key_ref, new_key_ref=checklist.key_ref,
            total=data_keys_under(organization_id=organization.pk, region=region, key_ref=key.key_ref).count(),
            actor=actor if actor is not None and actor.pk else None,
        )
        _point_key_at(key, checklist, name=name, description=description)
        audit_record(
            actor=actor, organization=organization, action="encryption_key.replaced", target=key,
            details={"region": region, "old_key_ref": job.old_key_ref, "new_key_ref": job.new_key_ref,
                     "rewrap_job": job.pk, "data_keys": job.total, "checks": checklist.verdicts()},
        )
    return job


def resume_rewrap(*, job: RewrapJob, actor, take_over: bool = False, start: bool = True) -> RewrapJob:
    """Run an interrupted job (or one with failures, e.g. after the old key was re-enabled) again.

    `take_over` lets an operator resume a job still marked running (its process died).
    """
    if actor is not None:
        require(actor, Action.KEY_MANAGE, job.organization)
    current = EncryptionKey.objects.filter(organization_id=job.organization_id, region=job.region).first()
    if current is None or current.key_ref != job.new_key_ref:
        raise KeyReplacementError(
            "The key this job re-wraps to is no longer the linked key; a later change superseded it.",
            code="superseded",
        )
    if not job.is_finished and not take_over:
        raise KeyReplacementError("This re-wrap job is still running.", code="replacement_in_progress")
    # Taking over clears the lease of the worker presumed dead (were it alive, it stops at its next heartbeat).
    RewrapJob.objects.filter(pk=job.pk).update(state=RewrapState.PENDING, lease_owner="", lease_expires_at=None)
    job.state = RewrapState.PENDING
    if start:
        _launch(job, actor=actor)
    return job


def linked_key(*, organization: Organization, region: str) -> EncryptionKey:
    key = EncryptionKey.objects.filter(organization=organization, region=region).first()
    if key is None:
        raise KeyReplacementError(
            "No key is linked for this region: link a key first (replacing needs a current key).", code="no_key"
        )
    return key


def _refuse_key_in_use(organization: Organization, region: str, new_key_ref: str) -> None:
    try:
        refuse_key_in_use(organization=organization, region=region, key_ref=new_key_ref)
    except KeyInUse as in_use:
        raise KeyReplacementError(str(in_use), code=in_use.code) from None


def _refuse_if_unfinished(organization: Organization, region: str, current_arn: str) -> None:
    """One replacement at a time; an interrupted one (KMS was unreachable) is resumed before the next,
    or its DEKs would stay under a key that is no longer the source of any job."""
    jobs = RewrapJob.objects.filter(organization=organization, region=region)
    unfinished = jobs.filter(state__in=RewrapJob.UNFINISHED).first()
    if unfinished is not None:
        raise KeyReplacementError(
            f"Re-wrap job #{unfinished.pk} of this region is still running; wait for it to finish "
            f"(or resume it: manage.py rewrap_data_keys --resume {unfinished.pk}).",
            code="replacement_in_progress",
        )
    interrupted = jobs.filter(state=RewrapState.FAILED, new_key_ref=current_arn).first()
    if interrupted is not None:
        raise KeyReplacementError(
            f"Re-wrap job #{interrupted.pk} of this region was interrupted; resume it before replacing the key again.",
            code="replacement_interrupted",
        )


def _point_key_at(key: EncryptionKey, checklist, *, name: str | None, description: str | None) -> None:
    now = timezone.now()
    key.key_ref = checklist.key_ref
    if name is not None:
        key.name = name
    if description is not None:
        key.description = description
    key.kms_metadata = checklist.metadata
    key.status = KeyStatus.ROTATION_DISABLED if checklist.metadata.get("rotation_enabled") is False else KeyStatus.HEALTHY
    key.deletion_date = None
    key.last_error = ""
    key.last_checked_at = now
    key.save()


def _switch_writers() -> None:
    """Writers must take DEKs under the new key: drop leases here now, elsewhere once the switch commits."""
    keyring.invalidate_everywhere()
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(keyring.invalidate_everywhere)


def _launch(job: RewrapJob, *, actor=None) -> None:
    """Hand the job to a worker. On the database backend the task row is written in the caller's
    transaction, so no worker sees it before the job row commits (and it vanishes with a rollback)."""
    from encryption_keys.tasks import rewrap_job

    rewrap_job.enqueue(job.pk, actor.pk if actor is not None and actor.pk else None)
    job.refresh_from_db()
