"""The scheduler enqueues each due run once, however many schedulers run, and nobody has to call check_keys:
a key disabled in KMS shows as disabled after one sweep interval."""

import datetime as dt
import re
import time

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from devtools import local_kms
from encryption_keys import services
from encryption_keys.models import EncryptionKey, KeyStatus
from konnect_admin.models import ScheduledRun
from konnect_admin.scheduling import SCHEDULE, schedule_tick

HOUR = "3600"


def enqueued(task_path):
    return list(DBTaskResult.objects.filter(task_path=task_path).order_by("enqueued_at")
                .values_list("enqueued_at", flat=True))


@pytest.mark.django_db
def test_a_tick_enqueues_what_is_due_once(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}  # queued, not run
    settings.SESSION_EXPIRY_SECONDS = 60
    start = timezone.now()

    assert schedule_tick(now=start) == [entry.name for entry in SCHEDULE]  # new entries are due at once
    assert schedule_tick(now=start) == []
    assert schedule_tick(now=start + dt.timedelta(seconds=59)) == []
    assert schedule_tick(now=start + dt.timedelta(minutes=3)) == ["rewrap-recovery", "protection-recovery",
                                                                     "session-expiry"]  # once
    assert schedule_tick(now=start + dt.timedelta(days=1)) == [entry.name for entry in SCHEDULE]
    assert len(enqueued("debugger.tasks.expire_sessions")) == 3
    assert ScheduledRun.objects.get(name="key-health").next_run_at == start + dt.timedelta(days=1, minutes=5)


def ticks(processes, name):
    return len(re.findall(r"^tick$", (processes.log_dir / f"{name}.log").read_text(), re.M))


def slots(processes, names, entry):
    """The schedule times at which the schedulers `names` enqueued `entry` (from their logs)."""
    found = []
    for name in names:
        log = (processes.log_dir / f"{name}.log").read_text()
        found += [dt.datetime.fromisoformat(at) for at in re.findall(rf"^enqueued {entry} at (\S+)$", log, re.M)]
    return sorted(found)


def test_two_schedulers_running_enqueue_each_due_run_once(django_processes):
    every = {"SESSION_EXPIRY_SECONDS": "1", "KEY_HEALTH_SWEEP_SECONDS": HOUR, "REWRAP_RECOVERY_SECONDS": HOUR,
             "PURGE_SECONDS": HOUR}
    for name in ("scheduler-a", "scheduler-b"):
        django_processes.start(name, "run_scheduler", "--tick", "0.05", "-v", "2", **every)
    django_processes.wait_until(
        lambda: min(ticks(django_processes, "scheduler-a"), ticks(django_processes, "scheduler-b")) >= 3
        and len(enqueued("debugger.tasks.expire_sessions")) >= 4,
        what="both schedulers ticked and session expiry came due 4 times")
    django_processes.stop_all()

    for entry in SCHEDULE:
        if entry.name != "session-expiry":  # due once in the run, at the start
            assert len(enqueued(entry.task_path)) == 1, entry.name
    # Judge the schedule times each enqueue was made for, not when its row was written: a loaded machine may
    # delay one insert more than the next. The ScheduledRun update makes a slot due 1 s after the previous one
    # was taken, so two schedulers sharing a slot would show as a gap under 1 s.
    taken = slots(django_processes, ("scheduler-a", "scheduler-b"), "session-expiry")
    assert len(taken) == len(enqueued("debugger.tasks.expire_sessions")) >= 4
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(taken, taken[1:], strict=False)]
    assert min(gaps) >= 1.0, gaps  # one per second, not one per scheduler


def test_the_schedule_turns_a_key_disabled_in_kms_to_disabled_within_one_interval(org, org_admin, cmek,
                                                                                  django_processes):
    key = services.link_key(organization=org, region="us", key_ref=cmek, name="Acme US", actor=org_admin).key
    checked = key.last_checked_at
    interval = 3
    django_processes.worker("worker")
    django_processes.start("scheduler", "run_scheduler", "--tick", "0.2", KEY_HEALTH_SWEEP_SECONDS=str(interval))
    django_processes.wait_until(lambda: EncryptionKey.objects.get(pk=key.pk).last_checked_at > checked,
                                what="the first scheduled sweep checked the key")
    assert EncryptionKey.objects.get(pk=key.pk).status == KeyStatus.HEALTHY

    local_kms.disable_key(cmek)
    disabled_at = time.monotonic()
    django_processes.wait_until(lambda: EncryptionKey.objects.get(pk=key.pk).status == KeyStatus.DISABLED,
                                what="a scheduled sweep saw the key disabled")

    # One interval, plus the time a loaded machine takes to run the check (the local KMS answers at once).
    assert time.monotonic() - disabled_at < interval + 10
    assert DBTaskResult.objects.filter(task_path="encryption_keys.tasks.sweep_key_health").count() >= 2
