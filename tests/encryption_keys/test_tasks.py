"""Key replacement re-wraps in a task worker process, never in the web process: it survives a killed worker
and two workers on one job re-wrap each data key once. Real `db_worker` processes, on SQLite and PostgreSQL."""

import pytest
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from encryption_keys import keyring, local_kms, services
from encryption_keys.lifecycle import replace_key
from encryption_keys.lifecycle.models import RewrapJob, RewrapState
from encryption_keys.models import DataKey
from encryption_keys.providers.aws import kms
from encryption_keys.tasks import rewrap_job
from tests.testapp.models import SealedNote

SCOPES = 8
WORKER = {"KEY_REWRAP_CONCURRENCY": "1", "KEY_REWRAP_COMMIT_EVERY": "1", "KEY_REWRAP_LEASE_SECONDS": "2",
          "KMS_READ_TIMEOUT": "60"}  # a call the gate holds is slow, not lost


@pytest.fixture
def new_cmek(org):
    arn = local_kms.create_key(region="us-west-2", description="replacement key", multi_region=True)
    local_kms.replicate_key(arn, to_region="us-east-2")
    return arn


@pytest.fixture
def sealed(org, org_admin, cmek, django_processes):
    """One data key per scope under the org's linked key; {title: plaintext}."""
    key = services.link_key(organization=org, region="us", key_arn=cmek, name="Acme US", actor=org_admin).key
    for scope in range(SCOPES):
        SealedNote.objects.create(organization=org, scope_ref=f"s{scope}", title=f"n{scope}", text=f"value {scope}")
    assert DataKey.objects.filter(wrapping_key_arn=cmek).count() == SCOPES
    return key, {f"n{scope}": f"value {scope}" for scope in range(SCOPES)}


def assert_all_moved_once_and_readable(job_id, old, new, expected):
    job = RewrapJob.objects.get(pk=job_id)
    # `done` grows by the rows each guarded UPDATE moved: a data key moved twice would count twice.
    assert (job.state, job.done, job.failed, job.total) == (RewrapState.COMPLETED, SCOPES, 0, SCOPES)
    assert set(DataKey.objects.values_list("wrapping_key_arn", flat=True)) == {new}
    for data_key in DataKey.objects.all():  # the stored bytes open under the new key, not the old
        kms.decrypt(key_arn=new, wrapped=data_key.wrapped, context=data_key.encryption_context(),
                    organization_id=data_key.organization_id)
    local_kms.disable_key(old)  # nothing may still need the old key
    keyring.reset_for_tests()
    notes = list(SealedNote.objects.order_by("title"))
    assert {n.title: r.value for n, r in zip(notes, keyring.reveal_many(n.text for n in notes), strict=True)} == expected


def finished(job_id):
    return RewrapJob.objects.filter(pk=job_id).exclude(state__in=RewrapJob.UNFINISHED).exists()


def test_replacement_from_the_page_is_enqueued_and_completes_in_a_worker_process(
        login, org_admin, sealed, new_cmek, django_processes, kms_gate):
    key, expected = sealed
    old = key.key_arn
    gate = kms_gate("ReEncrypt", allow=SCOPES)

    response = login(org_admin).post(reverse("encryption_key_replace", args=[key.pk]),
                                     {"name": "Acme US", "key_arn": new_cmek, "description": "", "region": "us"})

    assert response.status_code in (200, 302)
    job = RewrapJob.objects.get()
    assert (job.state, job.done, gate.received) == (RewrapState.PENDING, 0, 0)  # the web process re-wrapped nothing
    queued = DBTaskResult.objects.get()
    assert (queued.task_path, queued.args_kwargs["args"][0], queued.status) == (
        "encryption_keys.tasks.rewrap_job", job.pk, "READY")

    django_processes.worker("worker-1", **WORKER)
    django_processes.wait_until(lambda: finished(job.pk), what="the worker finished the job")

    assert_all_moved_once_and_readable(job.pk, old, new_cmek, expected)
    assert gate.received == SCOPES
    queued.refresh_from_db()
    assert queued.status == "SUCCESSFUL" and queued.worker_ids == ["worker-1"]
    assert queued.return_value == {"job": job.pk, "ran": True, "state": "completed", "done": SCOPES, "failed": 0}


def test_worker_killed_mid_job_then_another_worker_finishes_it(org, org_admin, sealed, new_cmek, django_processes,
                                                               kms_gate):
    key, expected = sealed
    old = key.key_arn
    gate = kms_gate("ReEncrypt", allow=3)
    job = replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=org_admin)
    django_processes.worker("doomed", **WORKER)
    django_processes.wait_until(lambda: gate.held == 1 and RewrapJob.objects.get(pk=job.pk).done == 3,
                                what="3 data keys were re-wrapped and the 4th call is in flight")

    django_processes.kill("doomed")

    job.refresh_from_db()
    assert (job.state, job.done, job.lease_owner.split(":")[1]) == (
        RewrapState.RUNNING, 3, str(django_processes.started["doomed"].pid))
    gate.open()  # the call in flight is answered to nobody
    # The scheduler looks for jobs whose worker stopped renewing its lease (every minute; here every second).
    django_processes.start("scheduler", "run_scheduler", "--tick", "0.2", REWRAP_RECOVERY_SECONDS="1",
                           KEY_HEALTH_SWEEP_SECONDS="3600", SESSION_EXPIRY_SECONDS="3600", PURGE_SECONDS="3600")
    django_processes.worker("successor", **WORKER)
    django_processes.wait_until(lambda: finished(job.pk), what="the successor finished the job")

    assert_all_moved_once_and_readable(job.pk, old, new_cmek, expected)
    # 3 re-wrapped by the killed worker, 1 answered to it after death, 5 by the successor: none done again.
    assert gate.received == SCOPES + 1
    recovered = DBTaskResult.objects.filter(task_path="encryption_keys.tasks.resume_stalled_rewraps",
                                            return_value=[job.pk])
    assert recovered.exists()  # the scheduled recovery, not the test, handed the job to the successor


def test_two_workers_racing_on_one_job_rewrap_each_data_key_once(org, org_admin, sealed, new_cmek, django_processes,
                                                                 kms_gate):
    key, expected = sealed
    old = key.key_arn
    gate = kms_gate("ReEncrypt", allow=0)  # the first run holds the job while the other worker tries it
    job = replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=org_admin)
    rewrap_job.enqueue(job.pk)  # the same job twice: a double submit, or a recovery racing a slow worker
    assert DBTaskResult.objects.filter(task_path="encryption_keys.tasks.rewrap_job").count() == 2

    # A lease that outlasts any hold of the gate: this is about a live worker's job, not a lapsed one (on a
    # loaded machine a 2 s lease could lapse while the gate holds the call, and a takeover would be right).
    steady = {**WORKER, "KEY_REWRAP_LEASE_SECONDS": "600"}
    django_processes.worker("worker-a", **steady)
    django_processes.worker("worker-b", **steady)
    django_processes.wait_until(lambda: gate.held == 1 and DBTaskResult.objects.filter(status="SUCCESSFUL").exists(),
                                what="one run holds the job and the other task has finished")
    gate.open()
    django_processes.wait_until(lambda: finished(job.pk), what="the job finished")

    assert_all_moved_once_and_readable(job.pk, old, new_cmek, expected)
    assert gate.received == SCOPES  # one KMS re-wrap per data key, in all
    outcomes = sorted(r["ran"] for r in DBTaskResult.objects.values_list("return_value", flat=True))
    assert outcomes == [False, True]


@pytest.mark.django_db
def test_a_worker_presumed_dead_stops_at_its_next_heartbeat_and_leaves_the_job_to_its_successor(org, org_admin,
                                                                                                 cmek, new_cmek,
                                                                                                 settings):
    """A slow worker's lease lapsed and another took the job over: the slow one must not go on calling KMS,
    nor mark the job interrupted under the successor's feet."""
    from django.utils import timezone

    from encryption_keys.lifecycle import lease, rewrap_data_keys

    settings.KEY_REWRAP_CONCURRENCY = settings.KEY_REWRAP_COMMIT_EVERY = 1  # a heartbeat after each data key
    services.link_key(organization=org, region="us", key_arn=cmek, name="Acme US", actor=org_admin)
    for scope in range(3):
        SealedNote.objects.create(organization=org, scope_ref=f"s{scope}", text=f"value {scope}")
    job = replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=org_admin, start=False)
    assert lease.claim(job.pk, owner="slow") and not lease.claim(job.pk, owner="successor")  # held
    RewrapJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now())  # it stopped renewing
    assert lease.claim(job.pk, owner="successor")
    ticks = iter(range(0, 10_000, 100))  # every heartbeat is due

    with pytest.raises(lease.LeaseLost):
        rewrap_data_keys(job, on_progress=lease.Heartbeat(job.pk, owner="slow", clock=lambda: next(ticks)))

    job.refresh_from_db()
    assert (job.state, job.lease_owner, job.done) == (RewrapState.RUNNING, "successor", 1)  # stopped after one
