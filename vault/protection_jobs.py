""""Protect with CMEK" on a task worker: the page submits a ProtectionJob, `vault.tasks.protect_vault_job` runs it.

    job = protection_job_submit(actor=user, control_plane=cp)   # None: already under the CMEK, nothing queued

The checks that can refuse (not an Org Admin, no CMEK linked) run in the request, before anything is queued.
One unfinished job per control plane (a partial unique constraint): a second submit while one is queued or
running gets that one back and queues nothing. The run is `vault_protect_with_cmek` (idempotent: each data key is
re-wrapped in its own transaction, and a re-run carries on), done under a lease on the job's row, as key
replacement does (encryption_keys/lifecycle/lease.py): two tasks for one job never both run it, and a job whose
worker died (its lease lapsed) is handed to a worker again by the next submit.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from encryption_keys.envelope import EnvelopeError
from encryption_keys.lifecycle import lease
from encryption_keys.lifecycle.lease import LeaseLost, lease_seconds
from konnect_admin.models import ControlPlane, User
from vault.models import ProtectionJob, ProtectionState
from vault.protection import (
    ProtectionOutcome,
    ProtectionRefused,
    is_protected,
    linked_cmek,
    vault_data_keys,
    vault_protect_with_cmek,
)

logger = logging.getLogger(__name__)


def protection_job_submit(*, actor: User, control_plane: ControlPlane) -> ProtectionJob | None:
    """Queue "Protect with CMEK" for the control plane's vault, or return the job already queued or running.

    Raises PermissionDenied or ProtectionRefused before queueing anything; returns None when the vault is already
    under the CMEK (nothing to do). On the database task backend the task row is written in this transaction.
    """
    cmek = linked_cmek(actor=actor, control_plane=control_plane)
    if is_protected(control_plane, cmek):
        return None
    try:
        with transaction.atomic():
            job = ProtectionJob.objects.create(
                control_plane=control_plane, key_ref=cmek.key_ref, actor=actor,
                pending=vault_data_keys(control_plane).exclude(wrapping_key_ref=cmek.key_ref).count(),
            )
            _enqueue(job)
    except IntegrityError:  # one is queued or running: that one, not a second run
        job = ProtectionJob.objects.get(control_plane=control_plane, state__in=ProtectionJob.UNFINISHED)
        if stalled_jobs().filter(pk=job.pk).exists():
            logger.warning("protection job %s: its worker stopped renewing the lease; enqueued again", job.pk)
            _enqueue(job)
    job.refresh_from_db()
    return job


def _enqueue(job: ProtectionJob) -> None:
    from vault.tasks import protect_vault_job

    protect_vault_job.enqueue(job.pk)


def claim(job_id: int, *, owner: str) -> bool:
    """Take the lease of an unfinished job nobody holds (or whose holder stopped renewing). True if taken."""
    return lease.claim(job_id, owner=owner, jobs=ProtectionJob)


def stalled_jobs():
    """Running jobs whose worker stopped renewing the lease (it died): the scheduler hands them to a worker."""
    return ProtectionJob.objects.filter(state=ProtectionState.RUNNING, lease_expires_at__lt=timezone.now())


def release(job_id: int, *, owner: str) -> None:
    lease.release(job_id, owner=owner, jobs=ProtectionJob)


def protection_job_run(job_id: int, *, owner: str) -> ProtectionJob:
    """Run a claimed job to its end (completed, or failed with the error code that stopped it)."""
    ProtectionJob.objects.filter(pk=job_id, lease_owner=owner).update(
        state=ProtectionState.RUNNING, started_at=timezone.now())
    job = ProtectionJob.objects.select_related("control_plane__organization", "actor").get(pk=job_id)
    progress = _Progress(job, owner=owner)
    if job.actor is None:  # the admin who asked was deleted since: nobody to act (and audit) for
        return _finish(job, owner, progress.outcome, state=ProtectionState.FAILED, error_code="permission_denied",
                       last_error="The administrator who asked for this no longer exists; submit it again.")
    try:
        outcome = vault_protect_with_cmek(actor=job.actor, control_plane=job.control_plane, on_progress=progress)
    except EnvelopeError as error:  # audited by vault_protect_with_cmek; the data keys moved so far stay moved
        return _finish(job, owner, progress.outcome, state=ProtectionState.FAILED, error_code=error.code.value,
                       last_error=error.message)
    except (ProtectionRefused, PermissionDenied) as refused:  # the key was unlinked, or the admin lost the role
        return _finish(job, owner, progress.outcome, state=ProtectionState.FAILED,
                       error_code="refused" if isinstance(refused, ProtectionRefused) else "permission_denied",
                       last_error=str(refused) or "You are no longer allowed to manage this organization's keys.")
    except Exception:
        _finish(job, owner, progress.outcome, state=ProtectionState.FAILED, error_code="internal",
                last_error="The worker stopped on an unexpected error; it is in the worker's log.")
        raise
    return _finish(job, owner, outcome, state=ProtectionState.COMPLETED)


def _finish(job: ProtectionJob, owner: str, outcome: ProtectionOutcome, *, state: str, error_code: str = "",
            last_error: str = "") -> ProtectionJob:
    ProtectionJob.objects.filter(pk=job.pk, lease_owner=owner).update(
        state=state, rewrapped=outcome.rewrapped, fallbacks=outcome.fallbacks, error_code=error_code,
        last_error=last_error[:500], finished_at=timezone.now())
    job.refresh_from_db()
    return job


class _Progress:
    """The run's progress callback: records the count, renews the lease a third of the way through it, and raises
    LeaseLost when another worker holds the job now."""

    def __init__(self, job: ProtectionJob, *, owner: str, clock=time.monotonic):
        self.job_id, self.owner, self.clock = job.pk, owner, clock
        self.renewed = clock()
        self.outcome = ProtectionOutcome()

    def __call__(self, outcome: ProtectionOutcome) -> None:
        self.outcome = outcome
        changes = {"rewrapped": outcome.rewrapped, "fallbacks": outcome.fallbacks}
        if self.clock() - self.renewed >= lease_seconds() / 3:
            changes["lease_expires_at"] = timezone.now() + timedelta(seconds=lease_seconds())
            self.renewed = self.clock()
        if not ProtectionJob.objects.filter(pk=self.job_id, lease_owner=self.owner).update(**changes):
            raise LeaseLost(f"protection job {self.job_id} is now held by another worker")
