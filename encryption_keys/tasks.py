"""Background work of the encryption_keys app, on Django's Tasks framework (`django.tasks`).

Tasks take ids, never model instances (their arguments are stored as JSON), and are safe to run twice:
a worker may die after the work and before the queue records it, and recovery may enqueue a job again.
No thread is started in a web process: the web request enqueues, a worker (`manage.py db_worker`) runs.
"""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.tasks import TaskContext, task

from encryption_keys import call_log, services, sweep
from encryption_keys.lifecycle import lease
from encryption_keys.lifecycle.models import RewrapJob
from encryption_keys.lifecycle.rewrap import RewrapInterrupted, rewrap_data_keys
from encryption_keys.lifecycle.rotate import BATCH_SIZE, reencrypt_scope
from encryption_keys.models import EncryptionKey
from konnect_admin.models import Organization

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


@task(takes_context=True)
def reencrypt_scope_job(context: TaskContext, *, organization_id: str, region: str, purpose: str, scope_ref: str,
                        batch_size: int = BATCH_SIZE) -> dict:
    """Data-key rotation of one scope (`manage.py rotate_data_keys --reencrypt --enqueue`): re-encrypt its records
    under a fresh data key, then shred the old ones. Safe to run again (a re-run re-encrypts what is left and
    shreds only once every value moved); of two runs of one scope on the queue, only the first started runs.
    Returns counts only."""
    scope = {"organization_id": organization_id, "region": region, "purpose": purpose, "scope_ref": scope_ref}
    first = next(iter(reencryptions_in_queue(**scope, running=True)), None)
    if first is not None and str(first.pk) != str(context.task_result.id):
        return {"ran": False, "running": str(first.pk)}
    organization = Organization.objects.get(pk=organization_id)
    try:
        result = reencrypt_scope(organization=organization, region=region, purpose=purpose, scope_ref=scope_ref,
                                 actor=None, batch_size=batch_size)
    finally:
        call_log.flush()
    return {"ran": True, "records": result.records, "values": result.values, "remaining": result.remaining,
            "unreadable": dict(result.unreadable), "old_data_keys": result.old_data_keys,
            "shredded": result.shredded, "complete": result.complete}


def reencryptions_in_queue(*, organization_id: str, region: str, purpose: str, scope_ref: str,
                           running: bool = False) -> list:
    """This scope's `reencrypt_scope_job` tasks queued or running (only running ones with `running`), first
    started first, on the database queue (the only durable backend; nothing to find on another)."""
    if reencrypt_scope_job.get_backend().__class__.__name__ != "DatabaseBackend":
        return []
    from django_tasks_db.models import DBTaskResult

    statuses = ["RUNNING"] if running else ["READY", "RUNNING"]
    tasks = DBTaskResult.objects.filter(task_path=reencrypt_scope_job.module_path, status__in=statuses)
    wanted = {"organization_id": str(organization_id), "region": region, "purpose": purpose, "scope_ref": scope_ref}
    return [queued for queued in tasks.order_by("started_at", "enqueued_at", "id")
            if {name: queued.args_kwargs["kwargs"].get(name) for name in wanted} == wanted]
