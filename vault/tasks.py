"""Background work of the vault, on Django's Tasks framework: "Protect with CMEK" (vault/protection_jobs.py).

Tasks take ids, never model instances, return counts only, and are safe to run twice (the job's lease)."""

from __future__ import annotations

from django.tasks import task

from encryption_keys import call_log
from encryption_keys.lifecycle.lease import worker_identity
from vault import protection_jobs
from vault.models import ProtectionJob


@task
def protect_vault_job(job_id: int) -> dict:
    """Run (or resume) protection job `job_id`, holding its lease; a no-op if another worker holds it or it is
    finished. Returns the job's outcome (state and counts: no key material)."""
    owner = worker_identity()
    if not protection_jobs.claim(job_id, owner=owner):
        state = ProtectionJob.objects.filter(pk=job_id).values_list("state", flat=True).first()
        return {"job": job_id, "ran": False, "state": state}
    try:
        job = protection_jobs.protection_job_run(job_id, owner=owner)
    finally:
        call_log.flush()
        protection_jobs.release(job_id, owner=owner)
    return {"job": job_id, "ran": True, "state": job.state, "rewrapped": job.rewrapped, "error_code": job.error_code}


@task
def resume_stalled_protections() -> list[int]:
    """Enqueue the protection jobs whose worker died mid-run (their lease lapsed); scheduled, safe to run often."""
    stalled = list(protection_jobs.stalled_jobs().values_list("pk", flat=True))
    for job_id in stalled:
        protect_vault_job.enqueue(job_id)
    return stalled
