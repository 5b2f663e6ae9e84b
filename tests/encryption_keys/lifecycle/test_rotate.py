"""Rotating data keys: retire active ones; re-encrypt one scope under a fresh DEK and shred the old ones."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from devtools import local_kms
from encryption_keys import keyring
from encryption_keys.envelope import peek_dek_id
from encryption_keys.lifecycle import reencrypt_scope, retire_data_keys
from encryption_keys.lifecycle.records import count_records, encrypted_models
from encryption_keys.models import DataKey, EncryptionKey
from konnect_admin.models import AuditEvent
from tests.testapp.models import SealedNote

pytestmark = pytest.mark.django_db
PURPOSE = "debugger.payload"  # SealedNote's purpose


def write(org, scope, count, *, start=0):
    for index in range(start, start + count):
        SealedNote.objects.create(
            organization=org, scope_ref=scope, title=f"{scope}#{index}", text=f"{scope} text {index}",
            data={"n": index, "scope": scope} if index % 2 else None, blob=f"{scope}-{index}".encode(),
        )


def values():
    keyring.reset_for_tests()
    out = {}
    for note in SealedNote.objects.all():
        out[note.title] = tuple(
            None if field is None else (lambda r: r.value if r.ok else r.error.code.value)(field.reveal_or_error())
            for field in (note.text, note.data, note.blob)
        )
    return out


def dek_ids(scope):
    ids = set()
    for note in SealedNote.objects.filter(scope_ref=scope):
        ids |= {peek_dek_id(f.envelope) for f in (note.text, note.data, note.blob) if f is not None}
    return ids


def test_retire_gives_new_writes_a_fresh_data_key(org, kms_calls):
    write(org, "a", 2)
    write(org, "b", 1)
    assert retire_data_keys(organization=org, scope_ref="a", actor=None) == 1
    write(org, "a", 1, start=2)
    write(org, "b", 1, start=1)
    assert DataKey.objects.filter(scope_ref="a").count() == 2  # a fresh DEK for the retired scope
    assert DataKey.objects.filter(scope_ref="b").count() == 1  # untouched scope keeps its DEK
    assert kms_calls(operation="GenerateDataKey").count() == 3
    assert values()["a#0"][0] == "a text 0"  # retired keys still decrypt
    event = AuditEvent.objects.get(action="encryption_key.data_keys_retired")
    assert event.details == {"region": None, "purpose": None, "scope_ref": "a", "data_keys": 1}


def test_reencrypt_scope_under_a_fresh_key_then_shred_the_old(org, settings, kms_calls):
    settings.DATAKEY_MAX_USES = 15  # the scope spans several DEKs (a lease per 15 values)
    keyring.reset_for_tests()
    write(org, "compromised", 20)
    write(org, "bystander", 4)
    before = values()
    old = dek_ids("compromised")
    assert len(old) >= 2
    bystander_deks = dek_ids("bystander")
    bystander_envelopes = sorted(bytes(t) for t in SealedNote.objects.filter(scope_ref="bystander").values_list("text", flat=True))
    keyring.reset_for_tests()
    decrypts = kms_calls(operation="Decrypt").count()
    progress = []

    result = reencrypt_scope(organization=org, region="us", purpose=PURPOSE, scope_ref="compromised", actor=None,
                             batch_size=7, on_progress=lambda done, total: progress.append((done, total)))

    assert result.complete and result.records == 20 and result.values == 50  # text + blob always, data on odd rows
    assert result.old_data_keys == len(old) and result.shredded == len(old)
    assert progress == [(7, 20), (14, 20), (20, 20)]
    assert kms_calls(operation="Decrypt").count() - decrypts == len(old)  # one Decrypt per old DEK, not per record
    new = dek_ids("compromised")
    assert new.isdisjoint(old) and len(new) >= 1
    assert set(DataKey.objects.filter(pk__in=old).values_list("wrapped", flat=True)) == {None}
    assert values() == before
    assert dek_ids("bystander") == bystander_deks
    assert sorted(bytes(t) for t in SealedNote.objects.filter(scope_ref="bystander").values_list("text", flat=True)) == bystander_envelopes
    assert AuditEvent.objects.get(action="encryption_key.scope_reencrypted").details["records"] == 20


def test_reencrypt_keeps_old_keys_when_a_value_is_unreadable(org, org_admin, cmek):
    EncryptionKey.objects.create(organization=org, region="us", name="k", key_ref=cmek)
    write(org, "s", 3)
    before = values()
    local_kms.disable_key(cmek)
    try:
        keyring.reset_for_tests()
        result = reencrypt_scope(organization=org, region="us", purpose=PURPOSE, scope_ref="s", actor=org_admin)
    finally:
        local_kms.enable_key(cmek)
    assert not result.complete
    assert result.unreadable["key_disabled"] == 3 + 3 + 1  # text, blob, data of note 1
    assert result.remaining == 3 and result.shredded == 0
    assert not DataKey.objects.filter(shredded_at__isnull=False).exists()
    assert values() == before  # nothing lost: run again once the key is back


def test_records_are_found_in_every_app_with_encrypted_fields(org, control_plane):
    from debugger.models import DebugSession, RequestLog

    labels = {entry.label for entry in encrypted_models()}
    assert {"testapp.SealedNote", "debugger.RequestLog", "debugger.PayloadCapture", "vault.Secret"} <= labels
    now = timezone.now()
    session = DebugSession.objects.create(control_plane=control_plane, duration_seconds=60, ends_at=now,
                                          retain_until=now)
    for index in range(3):
        RequestLog.objects.create(session=session, time=now, level="info", message=f"log {index}")
    session_deks = DataKey.objects.filter(scope_ref=session.scope_ref).values_list("pk", flat=True)
    assert count_records(session_deks, organization_id=org.pk) == {"debugger.RequestLog": 3}

    result = reencrypt_scope(organization=org, region="us", purpose="debugger.log", scope_ref=session.scope_ref,
                             actor=None)
    assert result.complete and result.records == 3
    keyring.reset_for_tests()
    assert sorted(log.message.reveal() for log in RequestLog.objects.all()) == ["log 0", "log 1", "log 2"]


# --- the command ------------------------------------------------------------------------------------------


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("rotate_data_keys", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_command_dry_run_then_retire(org):
    write(org, "a", 1)
    write(org, "b", 1)
    out, _ = run("--org", org.name)
    assert "Would retire 2 active data keys" in out and "Dry run" in out
    assert not DataKey.objects.filter(retired_at__isnull=False).exists()
    out, _ = run("--org", org.name, "--purpose", PURPOSE, "--yes")
    assert "Retired 2 data keys" in out
    assert DataKey.objects.filter(retired_at__isnull=False).count() == 2


def test_command_reencrypt_with_progress(org):
    write(org, "s", 5)
    before = values()
    out, _ = run("--org", org.name, "--region", "us", "--purpose", PURPOSE, "--scope", "s", "--reencrypt")
    assert "Would re-encrypt 5 records of scope s" in out and "at most 1 Decrypt" in out
    out, err = run("--org", org.name, "--region", "us", "--purpose", PURPOSE, "--scope", "s", "--reencrypt",
                   "--batch-size", "2", "--yes")
    assert "Re-encrypted 5 records (12 values) of scope s; shredded 1 of 1 old data keys." in out
    assert "5/5 records" in err and "[" in err
    assert values() == before


def test_command_incomplete_reencrypt_exits_non_zero(org, cmek):
    EncryptionKey.objects.create(organization=org, region="us", name="k", key_ref=cmek)
    write(org, "s", 2)
    local_kms.disable_key(cmek)
    keyring.reset_for_tests()
    try:
        with pytest.raises(CommandError, match="key_disabled: 5 values unreadable"):
            run("--org", org.name, "--region", "us", "--purpose", PURPOSE, "--scope", "s", "--reencrypt", "--yes")
    finally:
        local_kms.enable_key(cmek)


@pytest.mark.parametrize("args, message", [
    (["--reencrypt", "--scope", "s"], "give --region, --purpose and --scope"),
    (["--region", "xx"], "Unknown region"),
    (["--batch-size", "0"], "at least 1"),
    (["--region", "us", "--purpose", PURPOSE, "--scope", "none", "--reencrypt"], "No live data keys"),
])
def test_command_bad_input(org, args, message):
    with pytest.raises(CommandError, match=message):
        run("--org", org.name, *args)
