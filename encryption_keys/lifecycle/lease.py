"""Which worker runs a re-wrap job: a lease on the job's row, taken and renewed by guarded UPDATEs.

Two workers handed the same job (a duplicate task, a recovery racing a slow worker) cannot both run it: the
UPDATE that takes the lease matches only while nobody holds it or the holder's lease has lapsed, and the
database applies one such UPDATE at a time. A worker that dies (SIGKILL, a lost machine) stops renewing;
once its lease lapses, `stalled_jobs()` finds the job and another worker resumes it. The guarded UPDATE of
each data key (rewrap.py) is the second line: even two runs could not re-wrap one data key twice.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from encryption_keys.lifecycle.models import RewrapJob


class LeaseLost(BaseException):
    """Another worker took the job over (this one was presumed dead): stop at once, record nothing.

    A BaseException, like a kill: the run must not mark the job interrupted, the new holder is running it."""


def lease_seconds() -> int:
    """How long a claim lasts without renewal (`KEY_REWRAP_LEASE_SECONDS`, default 60)."""
    return max(1, int(getattr(settings, "KEY_REWRAP_LEASE_SECONDS", 60)))


def worker_identity() -> str:
    """Names this process (host, pid) and this claim (a random part), for the job's `lease_owner`."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def claim(job_id: int, *, owner: str, jobs=RewrapJob) -> bool:
    """Take the lease of an unfinished job nobody holds (or whose holder stopped renewing). True if taken.
    `jobs`: any model with `state`, `UNFINISHED`, `lease_owner` and `lease_expires_at` (vault's ProtectionJob too)."""
    now = timezone.now()
    return bool(
        jobs.objects.filter(pk=job_id, state__in=jobs.UNFINISHED)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .update(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds()))
    )


def release(job_id: int, *, owner: str, jobs=RewrapJob) -> None:
    jobs.objects.filter(pk=job_id, lease_owner=owner).update(lease_owner="", lease_expires_at=None)


def stalled_jobs() -> QuerySet[RewrapJob]:
    """Unfinished jobs whose worker stopped renewing its lease: their process died mid-run."""
    return RewrapJob.objects.filter(state__in=RewrapJob.UNFINISHED, lease_expires_at__lt=timezone.now())


class Heartbeat:
    """The run's progress callback: renews the lease a third of the way through it; raises LeaseLost when
    another worker holds the job now."""

    def __init__(self, job_id: int, *, owner: str, clock=time.monotonic):
        self.job_id = job_id
        self.owner = owner
        self.clock = clock
        self.renewed = clock()

    def __call__(self, job: RewrapJob) -> None:
        if self.clock() - self.renewed < lease_seconds() / 3:
            return
        renewed = RewrapJob.objects.filter(pk=self.job_id, lease_owner=self.owner).update(
            lease_expires_at=timezone.now() + timedelta(seconds=lease_seconds())
        )
        if not renewed:
            raise LeaseLost(f"re-wrap job {self.job_id} is now held by another worker")
        self.renewed = self.clock()
