"""Background work of the platform, on Django's Tasks framework: log retention and the queue's own results."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.tasks import task
from django.utils import timezone

from konnect_admin.retention import LOGS


@task
def purge_logs() -> dict[str, int]:
    """Delete the secret-resolution and key-usage log rows past retention (scheduled daily)."""
    return {log.label: log.execute().total() for log in LOGS}


@task
def prune_task_results() -> int:
    """Delete finished task results older than TASK_RESULT_RETENTION_DAYS (scheduled daily); a no-op on a
    backend that keeps no results in this database."""
    from django.apps import apps

    if not apps.is_installed("django_tasks_db"):
        return 0
    from django_tasks_db.models import DBTaskResult

    cutoff = timezone.now() - timedelta(days=getattr(settings, "TASK_RESULT_RETENTION_DAYS", 7))
    deleted, _ = DBTaskResult.objects.finished().filter(finished_at__lt=cutoff).delete()
    return deleted
