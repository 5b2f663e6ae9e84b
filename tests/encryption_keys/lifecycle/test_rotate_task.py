"""Data-key rotation on a task worker: `rotate_data_keys --reencrypt --yes --enqueue` queues the re-encryption of one
scope, a real `db_worker` process runs it; one run per scope at a time. On SQLite and PostgreSQL."""

import io

import pytest
from django.core.management import CommandError, call_command
from django_tasks_db.models import DBTaskResult

from encryption_keys import keyring
from encryption_keys.envelope import peek_dek_id
from encryption_keys.models import DataKey
from tests.testapp.models import SealedNote

PURPOSE = "debugger.payload"  # SealedNote's purpose
NOTES = 6
TASK = "encryption_keys.tasks.reencrypt_scope_job"
WORKER = {"KMS_READ_TIMEOUT": "60"}  # a call the gate holds is slow, not lost


@pytest.fixture
def scope_a(org, django_processes):
    for index in range(NOTES):
        SealedNote.objects.create(organization=org, scope_ref="a", title=f"a#{index}", text=f"a text {index}")
    SealedNote.objects.create(organization=org, scope_ref="b", title="b#0", text="b text")
    return {note.title: note.text.reveal() for note in SealedNote.objects.all()}


def rotate(org, *extra):
    out = io.StringIO()
    call_command("rotate_data_keys", "--org", str(org.pk), "--region", "us", "--purpose", PURPOSE, "--scope", "a",
                 "--reencrypt", *extra, stdout=out)
    return out.getvalue()


def dek_ids(scope):
    return {peek_dek_id(note.text.envelope) for note in SealedNote.objects.filter(scope_ref=scope)}


def readable():
    keyring.reset_for_tests()
    return {note.title: note.text.reveal() for note in SealedNote.objects.all()}


def finished_tasks():
    return DBTaskResult.objects.filter(task_path=TASK).finished()


def test_enqueued_rotation_runs_in_a_worker_process(org, scope_a, django_processes):
    old_a, old_b = dek_ids("a"), dek_ids("b")
    assert "Dry run" in rotate(org, "--enqueue") and not DBTaskResult.objects.exists()  # no --yes: nothing queued

    output = rotate(org, "--yes", "--enqueue")

    queued = DBTaskResult.objects.get()
    assert f"as task {queued.pk}" in output and (queued.task_path, queued.status) == (TASK, "READY")
    assert dek_ids("a") == old_a  # the command re-encrypted nothing itself
    with pytest.raises(CommandError, match="already ready"):
        rotate(org, "--yes", "--enqueue")  # one queued for the scope: not a second
    assert DBTaskResult.objects.count() == 1

    django_processes.worker("worker-1", **WORKER)
    django_processes.wait_until(lambda: finished_tasks().exists(), what="the worker finished the re-encryption")

    queued.refresh_from_db()
    assert queued.status == "SUCCESSFUL" and queued.worker_ids == ["worker-1"]
    assert queued.return_value == {"ran": True, "records": NOTES, "values": NOTES, "remaining": 0, "unreadable": {},
                                   "old_data_keys": 1, "shredded": 1, "complete": True}
    new_a = dek_ids("a")
    assert len(new_a) == 1 and new_a != old_a and dek_ids("b") == old_b  # scope b untouched
    assert DataKey.objects.get(pk=next(iter(old_a))).shredded_at is not None
    assert readable() == scope_a


def test_two_runs_of_one_scope_on_two_workers_run_once(org, scope_a, django_processes, kms_gate):
    from encryption_keys.tasks import reencrypt_scope_job

    old_a = dek_ids("a")
    gate = kms_gate("GenerateDataKey", allow=0)  # the first run holds at its fresh data key
    arguments = {"organization_id": str(org.pk), "region": "us", "purpose": PURPOSE, "scope_ref": "a"}
    first, second = reencrypt_scope_job.enqueue(**arguments), reencrypt_scope_job.enqueue(**arguments)  # by hand

    django_processes.worker("worker-a", **WORKER)
    django_processes.worker("worker-b", **WORKER)
    django_processes.wait_until(lambda: gate.held == 1 and finished_tasks().exists(),
                                what="one run holds the scope and the other task has finished")
    gate.open()
    django_processes.wait_until(lambda: finished_tasks().count() == 2, what="both tasks finished")

    outcomes = {str(row.pk): row.return_value for row in DBTaskResult.objects.all()}
    assert sorted(outcome["ran"] for outcome in outcomes.values()) == [False, True]
    ran = next(pk for pk, outcome in outcomes.items() if outcome["ran"])
    skipped = next(outcome for outcome in outcomes.values() if not outcome["ran"])
    assert skipped == {"ran": False, "running": ran} and {ran} <= {str(first.id), str(second.id)}
    assert outcomes[ran]["complete"] and gate.received == 1  # one fresh data key, one run
    assert len(dek_ids("a")) == 1 and dek_ids("a") != old_a
    assert readable() == scope_a


@pytest.mark.django_db
def test_enqueue_is_for_a_reencryption(org):
    with pytest.raises(CommandError, match="--enqueue queues a re-encryption"):
        call_command("rotate_data_keys", "--org", str(org.pk), "--yes", "--enqueue", stdout=io.StringIO())
