"""The schedule of background work, and the tick that enqueues what is due (`manage.py run_scheduler`).

Neither django.tasks nor django-tasks-db schedules recurring work, so one small scheduler process does: each
tick, every due entry is enqueued once however many schedulers run (see ScheduledRun). Intervals come from
settings; a missed tick (the scheduler was down) enqueues once, not once per missed interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from konnect_admin.models import ScheduledRun


@dataclass(frozen=True)
class Every:
    name: str
    task_path: str
    seconds_setting: str
    default_seconds: int

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=max(1, int(getattr(settings, self.seconds_setting, self.default_seconds))))


SCHEDULE: tuple[Every, ...] = (
    Every("key-health", "encryption_keys.tasks.sweep_key_health", "KEY_HEALTH_SWEEP_SECONDS", 300),
    Every("rewrap-recovery", "encryption_keys.tasks.resume_stalled_rewraps", "REWRAP_RECOVERY_SECONDS", 60),
    Every("protection-recovery", "vault.tasks.resume_stalled_protections", "REWRAP_RECOVERY_SECONDS", 60),
    Every("session-expiry", "debugger.tasks.expire_sessions", "SESSION_EXPIRY_SECONDS", 60),
    Every("debugger-partitions", "debugger.tasks.ensure_debugger_partitions", "DEBUGGER_PARTITION_SECONDS", 3600),
    Every("debugger-purge", "debugger.tasks.purge_debugger_data", "PURGE_SECONDS", 86400),
    Every("log-purge", "konnect_admin.tasks.purge_logs", "PURGE_SECONDS", 86400),
    Every("task-results-prune", "konnect_admin.tasks.prune_task_results", "PURGE_SECONDS", 86400),
)


def schedule_tick(*, now: datetime | None = None) -> list[str]:
    """Enqueue every entry that is due (a new entry is due at once); returns the names enqueued by this call."""
    now = now or timezone.now()
    enqueued = []
    for entry in SCHEDULE:
        _ensure_row(entry, now)
        with transaction.atomic():
            took = ScheduledRun.objects.filter(name=entry.name, next_run_at__lte=now).update(
                next_run_at=now + entry.interval, last_enqueued_at=now
            )
            if took:  # on the database backend the task row commits with the UPDATE, or neither does
                import_string(entry.task_path).enqueue()
                enqueued.append(entry.name)
    return enqueued


def _ensure_row(entry: Every, now: datetime) -> None:
    if ScheduledRun.objects.filter(name=entry.name).exists():
        return
    try:
        with transaction.atomic():
            ScheduledRun.objects.create(name=entry.name, next_run_at=now)
    except IntegrityError:  # another scheduler made it first
        pass
