""""Protect with CMEK" runs in a task worker, never in the web request: the page queues one job per control plane
(a second submit finds it), a real `db_worker` process runs it, the job page polls while it runs and shows the
outcome or the KMS error. On SQLite and PostgreSQL."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from devtools import local_kms
from encryption_keys import keyring
from konnect_admin.models import AuditEvent
from tests import factories
from tests.vault.conftest import make_secrets
from vault import services
from vault.models import ProtectionJob, Secret
from vault.protection_jobs import protection_job_submit

STORES = 3
TASK = "vault.tasks.protect_vault_job"


@pytest.fixture
def older_vault(org, org_admin, control_plane, link_cmek, platform_keys):
    """A control plane created before the CMEK was linked: one data key per store, under the platform key."""
    for index in range(STORES):
        store = services.config_store_create(actor=org_admin, control_plane=control_plane, name=f"store-{index}")
        make_secrets(store, org_admin, **{f"k{index}": f"value {index}"})
    link_cmek(org)
    return control_plane


def vault_arns(control_plane):
    from vault.protection import vault_data_keys

    return set(vault_data_keys(control_plane).values_list("wrapping_key_ref", flat=True))


def finished(job_id):
    return ProtectionJob.objects.filter(pk=job_id).exclude(state__in=ProtectionJob.UNFINISHED).exists()


def job_url(job):
    return reverse("vault_protection_job", args=[job.control_plane_id, job.pk])


def test_protect_is_queued_by_the_page_and_runs_once_in_a_worker_process(login, org_admin, older_vault, cmek,
                                                                         django_processes, kms_gate):
    gate = kms_gate("ReEncrypt", allow=1)  # the worker moves one data key, then its 2nd call waits
    client = login(org_admin)
    url = reverse("vault_protect_with_cmek", args=[older_vault.pk])

    response = client.post(url)

    job = ProtectionJob.objects.get()
    assert response.status_code == 302 and response["Location"] == job_url(job)
    assert (job.state, job.pending, job.rewrapped, gate.received) == ("pending", STORES, 0, 0)  # nothing in the web
    queued = DBTaskResult.objects.get()
    assert (queued.task_path, queued.args_kwargs["args"], queued.status) == (TASK, [job.pk], "READY")
    waiting = client.get(job_url(job)).content.decode()
    assert "Queued" in waiting and "Waiting for a task worker" in waiting and 'hx-trigger="every 1s"' in waiting
    assert client.post(url)["Location"] == job_url(job)  # a second submit while queued: the same job
    assert DBTaskResult.objects.count() == 1

    django_processes.worker("worker-1", KMS_READ_TIMEOUT="60")  # a call the gate holds is slow, not lost
    django_processes.wait_until(lambda: gate.held == 1, what="the worker moved a data key and holds the next")
    assert client.post(url)["Location"] == job_url(job)  # …and while running: the same job, nothing queued
    assert DBTaskResult.objects.count() == 1 and ProtectionJob.objects.count() == 1
    running = client.get(job_url(job), headers={"HX-Request": "true"})
    fragment = running.content.decode()
    assert running.status_code == 200 and "<html" not in fragment and 'id="protection-progress"' in fragment
    assert "Running" in fragment and "<strong>1</strong> of 3 data keys re-wrapped so far" in fragment
    assert 'hx-trigger="every 1s"' in fragment

    gate.open()
    django_processes.wait_until(lambda: DBTaskResult.objects.filter(pk=queued.pk).finished().exists(),
                                what="the worker finished the task")

    job.refresh_from_db()
    assert (job.state, job.rewrapped, job.fallbacks, job.error_code) == ("completed", STORES, 0, "")
    assert gate.received == STORES  # one ReEncrypt per data key, all by the worker
    assert vault_arns(older_vault) == {cmek}
    queued.refresh_from_db()
    assert queued.status == "SUCCESSFUL" and queued.worker_ids == ["worker-1"]
    assert queued.return_value == {"job": job.pk, "ran": True, "state": "completed", "rewrapped": STORES,
                                   "error_code": ""}
    done = client.get(job_url(job), headers={"HX-Request": "true"}).content.decode()
    assert "Vault protected with the CMEK: <strong>3</strong> data keys re-wrapped" in done
    assert "hx-trigger" not in done  # finished: polling stops
    event = AuditEvent.objects.get(action="vault.protected_with_cmek")
    assert event.actor == org_admin and event.details["data_keys_rewrapped"] == STORES
    keyring.reset_for_tests()  # every secret reads back, through the CMEK now
    assert sorted(s.value.reveal() for s in Secret.objects.all()) == [f"value {i}" for i in range(STORES)]


def local_kms_platform_arn(control_plane):
    from django.conf import settings

    return settings.PLATFORM_KMS_KEYS[control_plane.region]


def test_a_kms_failure_in_the_worker_shows_a_clear_error_and_a_new_submit_carries_on(
        login, org_admin, older_vault, cmek, django_processes):
    local_kms.disable_key(cmek)
    client = login(org_admin)
    url = reverse("vault_protect_with_cmek", args=[older_vault.pk])
    job = ProtectionJob.objects.get(pk=int(client.post(url)["Location"].rstrip("/").rsplit("/", 1)[1]))
    django_processes.worker("worker-1")
    django_processes.wait_until(lambda: finished(job.pk), what="the worker stopped the job")

    job.refresh_from_db()
    assert (job.state, job.error_code, job.rewrapped) == ("failed", "key_disabled", 0)
    page = client.get(job_url(job))
    text = page.content.decode()
    assert page.status_code == 200 and 'role="alert"' in text
    assert "Stopped: Key disabled" in text and "<code>key_disabled</code>" in text and "Try again" in text
    assert "hx-trigger" not in text
    failed = AuditEvent.objects.get(action="vault.cmek_protection_failed")
    assert failed.actor == org_admin and failed.details["code"] == "key_disabled"
    assert vault_arns(older_vault) == {local_kms_platform_arn(older_vault)}  # nothing moved, all still readable

    local_kms.enable_key(cmek)
    again = ProtectionJob.objects.get(pk=int(client.post(url)["Location"].rstrip("/").rsplit("/", 1)[1]))
    assert again.pk != job.pk  # a finished job is not reused: a new run carries on
    django_processes.wait_until(lambda: finished(again.pk), what="the worker finished the second job")
    again.refresh_from_db()
    assert (again.state, again.rewrapped) == ("completed", STORES)
    assert vault_arns(older_vault) == {cmek}


@pytest.mark.django_db
def test_refusals_are_answered_in_the_request_and_queue_nothing(login, org, org_admin, control_plane, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    response = login(org_admin).post(reverse("vault_protect_with_cmek", args=[control_plane.pk]))
    assert response.status_code == 409 and b"No customer-managed key is linked" in response.content
    assert not ProtectionJob.objects.exists() and not DBTaskResult.objects.exists()


@pytest.mark.django_db
def test_the_job_page_is_scoped_to_its_control_plane_and_organization(login, org, org_admin, other_org,
                                                                       older_vault, cmek):
    job = ProtectionJob.objects.create(control_plane=older_vault, key_ref=cmek, actor=org_admin, state="completed")
    sibling = factories.make_control_plane(org, name="sibling")
    assert login(org_admin).get(job_url(job)).status_code == 200
    # Another control plane's URL with this job's id, and another organization's admin: 404.
    assert login(org_admin).get(reverse("vault_protection_job", args=[sibling.pk, job.pk])).status_code == 404
    outsider = factories.make_role_user(other_org, "org_admin")
    assert login(outsider).get(job_url(job)).status_code == 404
    assert login(outsider).get(job_url(job), headers={"HX-Request": "true"}).status_code == 404
    viewer = factories.make_role_user(org, "cp_viewer", older_vault)  # sees the vault, may not manage keys
    assert login(viewer).get(job_url(job)).status_code == 403


@pytest.mark.django_db
def test_a_job_whose_worker_died_is_handed_to_a_worker_by_the_next_submit(org_admin, older_vault, cmek):
    job = ProtectionJob.objects.create(control_plane=older_vault, key_ref=cmek, actor=org_admin, state="running",
                                       lease_owner="host:1:dead", lease_expires_at=timezone.now() - timedelta(seconds=1))
    # The test settings run the task at enqueue (immediate backend): the submit resumes that job, not a new one.
    assert protection_job_submit(actor=org_admin, control_plane=older_vault).pk == job.pk
    job.refresh_from_db()
    assert (job.state, job.rewrapped, job.lease_owner) == ("completed", STORES, "")
    assert ProtectionJob.objects.count() == 1 and vault_arns(older_vault) == {cmek}


@pytest.mark.django_db
def test_the_scheduled_recovery_hands_a_job_whose_worker_died_to_a_worker(org_admin, older_vault, cmek):
    from vault.tasks import resume_stalled_protections

    dead = ProtectionJob.objects.create(control_plane=older_vault, key_ref=cmek, actor=org_admin, state="running",
                                        lease_owner="host:1:dead", lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert resume_stalled_protections.call() == [dead.pk]  # the immediate backend runs the job it enqueues
    dead.refresh_from_db()
    assert (dead.state, dead.rewrapped, dead.lease_owner) == ("completed", STORES, "")
    assert resume_stalled_protections.call() == []  # nothing left to recover


@pytest.mark.django_db
def test_a_job_held_by_a_live_worker_is_not_run_again(org_admin, older_vault, cmek):
    held = timezone.now() + timedelta(minutes=1)
    job = ProtectionJob.objects.create(control_plane=older_vault, key_ref=cmek, actor=org_admin, state="running",
                                       lease_owner="host:1:alive", lease_expires_at=held)
    assert protection_job_submit(actor=org_admin, control_plane=older_vault).pk == job.pk
    job.refresh_from_db()
    assert (job.state, job.rewrapped, job.lease_owner) == ("running", 0, "host:1:alive")
    assert vault_arns(older_vault) != {cmek}
    from vault.tasks import resume_stalled_protections

    assert resume_stalled_protections.call() == []  # a live lease is not "stalled"


@pytest.mark.django_db
def test_a_job_whose_admin_was_deleted_stops_with_a_reason_and_moves_nothing(login, org_admin, older_vault, cmek):
    from vault.tasks import protect_vault_job

    job = ProtectionJob.objects.create(control_plane=older_vault, key_ref=cmek, actor=None)
    protect_vault_job.enqueue(job.pk)  # the test settings run it here (immediate backend)
    job.refresh_from_db()
    assert (job.state, job.error_code, job.lease_owner) == ("failed", "permission_denied", "")
    assert vault_arns(older_vault) != {cmek}
    page = login(org_admin).get(job_url(job)).content.decode()
    assert "<code>permission_denied</code>" in page and "no longer exists" in page
