"""Health follows reality between sweeps: the first data-path failure marks the key at once, and the first
success after it enqueues the check that clears it (encryption_keys/key_state.py). No test here runs a sweep
or `check_keys`: whatever changes the status, the data path does."""

import pytest
from django.db import transaction
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from devtools import local_kms as kms_admin
from encryption_keys import key_state, keyring, services
from encryption_keys.envelope import DecryptionError, EncryptionUnavailable, ErrorCode
from encryption_keys.models import EncryptionKey, KeyStatus, KeyStatusChange
from konnect_admin.models import AuditEvent
from tests.testapp.models import SealedNote

# Transactional: a status observed inside a transaction is stored after it ends, as in production.
pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "state-follows-kms-0417"


@pytest.fixture
def linked(org, org_admin, cmek):
    return services.link_key(organization=org, region="us", key_ref=cmek, name="Acme US", actor=org_admin).key


@pytest.fixture
def note(org, linked):
    return SealedNote.objects.create(organization=org, text=SECRET)


def read(note) -> str:
    keyring.reset_for_tests()  # a process that has not cached the data key: it must ask KMS
    return SealedNote.objects.get(pk=note.pk).text.reveal()


def status_changes(key):
    return list(KeyStatusChange.objects.filter(key=key).exclude(previous_status="").order_by("created_at", "id")
                .values_list("previous_status", "status"))


def test_the_first_failed_read_marks_the_key_disabled_at_once(login, org_admin, linked, note, cmek):
    kms_admin.disable_key(cmek)
    with pytest.raises(DecryptionError) as refused:
        read(note)
    assert refused.value.code is ErrorCode.KEY_DISABLED
    linked.refresh_from_db()
    assert linked.status == KeyStatus.DISABLED
    assert "Decrypt failed on the data path" in linked.last_error
    assert status_changes(linked) == [("healthy", "disabled")]
    event = AuditEvent.objects.get(action="encryption_key.status_changed")
    assert event.actor is None and event.details["source"] == "data_path"
    # The list, the Overview and the banner read the same stored status.
    client = login(org_admin)
    for url in (reverse("dashboard"), reverse("encryption_key_list")):
        body = client.get(url).content.decode()
        assert "Encryption key “Acme US” (US): disabled." in body


def test_many_failures_in_many_processes_are_one_transition_and_one_audit_event(linked, note, cmek):
    kms_admin.disable_key(cmek)
    for _ in range(5):
        with pytest.raises(DecryptionError):
            read(note)
    assert status_changes(linked) == [("healthy", "disabled")]
    assert AuditEvent.objects.filter(action="encryption_key.status_changed").count() == 1
    assert not AuditEvent.objects.filter(action="encryption_key.checked").exists()


def test_observations_are_rate_limited_through_the_shared_cache(linked, note, cmek):
    kms_admin.disable_key(cmek)
    with pytest.raises(DecryptionError):
        read(note)
    EncryptionKey.objects.filter(pk=linked.pk).update(status=KeyStatus.HEALTHY)  # as if another writer raced
    with pytest.raises(DecryptionError):
        read(note)
    # Within KEY_STATE_OBSERVE_SECONDS the second failure is not observed again: no row is touched.
    assert EncryptionKey.objects.get(pk=linked.pk).status == KeyStatus.HEALTHY


def test_a_refused_write_marks_the_key_although_its_transaction_rolls_back(org, linked, cmek):
    kms_admin.set_key_state(cmek, "PendingDeletion")
    keyring.reset_for_tests()
    with pytest.raises(EncryptionUnavailable), transaction.atomic():
        SealedNote.objects.create(organization=org, text=SECRET, scope_ref="fresh-scope")
    key_state.apply_pending()  # what the end of the request does (request_finished)
    linked.refresh_from_db()
    assert linked.status == KeyStatus.PENDING_DELETION
    assert not SealedNote.objects.filter(scope_ref="fresh-scope").exists()
    assert "GenerateDataKey failed on the data path" in linked.last_error


def test_a_refused_write_in_a_request_marks_the_key_when_the_request_ends(client, linked, cmek):
    from django.core.signals import request_finished

    kms_admin.disable_key(cmek)
    keyring.reset_for_tests()
    with transaction.atomic():
        with pytest.raises(EncryptionUnavailable), transaction.atomic():
            SealedNote.objects.create(organization=linked.organization, text=SECRET, scope_ref="in-request")
        assert EncryptionKey.objects.get(pk=linked.pk).status == KeyStatus.HEALTHY  # not inside the transaction
    request_finished.send(sender=None)
    assert EncryptionKey.objects.get(pk=linked.pk).status == KeyStatus.DISABLED


def test_the_first_success_after_a_failure_enqueues_one_check_that_clears_it(linked, note, cmek, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    kms_admin.disable_key(cmek)
    with pytest.raises(DecryptionError):
        read(note)
    assert EncryptionKey.objects.get(pk=linked.pk).status == KeyStatus.DISABLED
    kms_admin.enable_key(cmek)
    assert read(note) == SECRET
    assert read(note) == SECRET  # a second success (another process) does not enqueue a second check
    queued = DBTaskResult.objects.filter(task_path="encryption_keys.tasks.check_key")
    assert [row.args_kwargs["args"] for row in queued] == [[str(linked.pk)]]
    # The worker runs it (here in-process): the full check clears the status.
    from encryption_keys.tasks import check_key

    assert check_key.call(str(linked.pk)) == KeyStatus.HEALTHY
    assert status_changes(linked) == [("healthy", "disabled"), ("disabled", "healthy")]


def test_a_success_after_a_sweep_found_the_key_disabled_also_enqueues_the_check(linked, note, cmek):
    kms_admin.disable_key(cmek)
    services.check_key_health(key=linked)  # stored by a check: the marker is set the same way
    kms_admin.enable_key(cmek)
    assert read(note) == SECRET  # immediate backend in tests: the check runs at once
    assert EncryptionKey.objects.get(pk=linked.pk).status == KeyStatus.HEALTHY


def test_a_network_failure_does_not_mark_the_key(linked, note, kms_server):
    kms_server.stop()
    try:
        with pytest.raises(DecryptionError) as refused:
            read(note)
    finally:
        kms_server.start()
    assert refused.value.code is ErrorCode.KMS_UNAVAILABLE
    assert EncryptionKey.objects.get(pk=linked.pk).status == KeyStatus.HEALTHY
    assert status_changes(linked) == []


def test_a_failing_platform_key_marks_no_customer_key(org, other_org, platform_keys, linked):
    kms_admin.disable_key(platform_keys["us"])
    try:
        keyring.reset_for_tests()
        with pytest.raises(EncryptionUnavailable):
            SealedNote.objects.create(organization=other_org, text=SECRET)
    finally:
        kms_admin.enable_key(platform_keys["us"])
    assert EncryptionKey.objects.get(pk=linked.pk).status == KeyStatus.HEALTHY
    assert not KeyStatusChange.objects.exclude(previous_status="").exists()
