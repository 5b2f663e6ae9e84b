"""Background work of the encryption_keys app, on Django's Tasks framework (`django.tasks`).

Tasks take ids, never model instances (their arguments are stored as JSON), and are safe to run twice:
a worker may die after the work and before the queue records it, and recovery may enqueue a job again.
No thread is started in a web process: the web request enqueues, a worker (`manage.py db_worker`) runs.
"""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.tasks import task

from encryption_keys import call_log, services, sweep
from encryption_keys.lifecycle import lease
from encryption_keys.lifecycle.models import RewrapJob
from encryption_keys.lifecycle.rewrap import RewrapInterrupted, rewrap_data_keys
from encryption_keys.models import EncryptionKey

logger = logging.getLogger(__name__)


@task
def rewrap_job(job_id: int, actor_id: int | None = None) -> dict:
    """Run (or resume) re-wrap job `job_id` to the end, holding its lease; a no-op if another worker holds it
    or it is already finished. `actor_id` is who resumed it (default: who replaced the key).
    Returns the job's outcome for the task result (counts only, no key material)."""
    owner = lease.worker_identity()
    if not lease.claim(job_id, owner=owner):
        state = RewrapJob.objects.filter(pk=job_id).values_list("state", flat=True).first()
        return {"job": job_id, "ran": False, "state": state}
    try:
        job = RewrapJob.objects.get(pk=job_id)
        actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id is not None else None
        job = rewrap_data_keys(job, actor=actor, on_progress=lease.Heartbeat(job_id, owner=owner))
    except RewrapInterrupted as interrupted:  # KMS unreachable: the job is marked interrupted, a resume finishes it
        logger.warning("%s", interrupted)
        job = interrupted.job
    finally:
        call_log.flush()
        lease.release(job_id, owner=owner)
    return {"job": job_id, "ran": True, "state": job.state, "done": job.done, "failed": job.failed}


@task
def resume_stalled_rewraps() -> list[int]:
    """Enqueue the jobs whose worker died mid-run (their lease lapsed); scheduled, and safe to run often."""
    stalled = list(lease.stalled_jobs().values_list("pk", flat=True))
    for job_id in stalled:
        logger.warning("re-wrap job %s: its worker stopped renewing the lease; enqueued again", job_id)
        rewrap_job.enqueue(job_id)
    return stalled


@task
def sweep_key_health() -> dict:
    """Read every linked key and every platform key once, KEY_HEALTH_SWEEP_CONCURRENCY calls in flight (see
    `sweep.py`): one task for the whole sweep, its thread pool in this worker. A key DescribeKey finds Enabled
    but that is stored unhealthy gets the full check as its own `check_key` task."""
    try:
        result = sweep.sweep_key_health()
    finally:
        call_log.flush()
    for key_id in result.recheck:
        check_key.enqueue(key_id)
    return {"keys": result.keys, "platform_keys": result.platform_keys, "changed": result.changed,
            "rechecked": len(result.recheck)}


@task
def check_key(key_id: str) -> str | None:
    """The full check of one linked key (what "Check now" and `manage.py check_keys` do), stored."""
    key = EncryptionKey.objects.filter(pk=key_id).first()
    if key is None:  # unlinked since the sweep
        return None
    try:
        return services.check_key_health(key=key, actor=None).key.status
    except EncryptionKey.DoesNotExist:
        return None
    finally:
        call_log.flush()
