"""`manage.py rewrap_data_keys`: dry run by default, --yes acts, progress on stderr, summary, non-zero exit."""

import io

import pytest
from django.core.management import CommandError, call_command

from devtools import local_kms
from encryption_keys.lifecycle.models import RewrapJob, RewrapState
from encryption_keys.models import DataKey, EncryptionKey, KmsCall
from tests.testapp.models import SealedNote

pytestmark = pytest.mark.django_db


@pytest.fixture
def notes(org, linked_key):
    for scope in range(4):
        for index in range(5):
            SealedNote.objects.create(organization=org, scope_ref=f"s{scope}", text=f"v{scope}.{index}")


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("rewrap_data_keys", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_dry_run_says_what_would_happen_and_changes_nothing(org, linked_key, new_cmek, notes, kms_calls):
    out, _ = run("--org", org.name, "--region", "us", "--to-arn", new_cmek)
    assert f"Would switch {org.name} (us) from {linked_key.key_ref} to {new_cmek}." in out
    assert "Data keys to re-wrap: 4: 4 re-wrap calls, one per data key (ReEncrypt" in out
    assert "Records protected by them: 20 (testapp.SealedNote 20); records rewritten: 0." in out
    assert "[   pass] Key enabled" in out and "Dry run: nothing changed" in out
    assert not RewrapJob.objects.exists()
    assert EncryptionKey.objects.get().key_ref == linked_key.key_ref
    assert kms_calls(operation="ReEncrypt").count() == 0


@pytest.mark.parametrize("yes", [[], ["--yes"]])
def test_replacing_with_another_organizations_key_is_refused(other_org, linked_key, yes, kms_calls):
    """The operator's shell is no way around ownership: Globex's key cannot be switched to Acme's, dry run or not."""
    globex_key = local_kms.create_key(region="us-west-2", multi_region=True)
    local_kms.replicate_key(globex_key, to_region="us-east-2")
    EncryptionKey.objects.create(organization=other_org, region="us", name="Globex", key_ref=globex_key)
    with pytest.raises(CommandError, match="already in use by another organization"):
        run("--org", other_org.name, "--region", "us", "--to-arn", linked_key.key_ref, *yes)
    assert EncryptionKey.objects.get(organization=other_org).key_ref == globex_key
    assert not RewrapJob.objects.exists() and kms_calls(organization=other_org).count() == 0


def test_yes_replaces_with_progress_and_summary(org, linked_key, new_cmek, notes):
    out, err = run("--org", str(org.pk), "--region", "us", "--to-arn", new_cmek, "--yes")
    job = RewrapJob.objects.get()
    assert job.state == RewrapState.COMPLETED and job.actor is None
    assert f"Job #{job.pk}: completed. Re-wrapped 4 of 4 data keys, failed 0. KMS calls: ReEncrypt 4, Decrypt 0, Encrypt 0." in out
    assert "[##############################] 4/4 data keys" in err
    assert set(DataKey.objects.values_list("wrapping_key_ref", flat=True)) == {new_cmek}


def test_stranded_data_keys_exit_non_zero_and_are_listed(org, linked_key, new_cmek, notes):
    local_kms.disable_key(linked_key.key_ref)
    try:
        with pytest.raises(CommandError, match="4 data keys could not be re-wrapped") as excinfo:
            out = io.StringIO()
            call_command("rewrap_data_keys", "--org", org.name, "--region", "us", "--to-arn", new_cmek, "--yes",
                         stdout=out, stderr=io.StringIO())
    finally:
        local_kms.enable_key(linked_key.key_ref)
    job = RewrapJob.objects.get()
    assert f"--resume {job.pk} --yes" in str(excinfo.value)
    listing = out.getvalue()
    assert all(f"{pk}: key_disabled" in listing for pk in DataKey.objects.values_list("pk", flat=True))


def test_verification_failure_prints_the_checklist(org, linked_key, notes):
    rsa = local_kms.create_key(region="us-west-2", key_spec="RSA_2048")
    out = io.StringIO()
    with pytest.raises(CommandError, match="fails verification; nothing was replaced"):
        call_command("rewrap_data_keys", "--org", org.name, "--region", "us", "--to-arn", rsa, "--yes", stdout=out)
    assert "[   fail] Symmetric key (SYMMETRIC_DEFAULT)" in out.getvalue()
    assert not RewrapJob.objects.exists()


def test_kms_down_refuses_to_switch_the_key(org, linked_key, new_cmek, notes, local_kms):
    local_kms.stop()
    try:
        with pytest.raises(CommandError, match="verification"):
            run("--org", org.name, "--region", "us", "--to-arn", new_cmek, "--yes")
    finally:
        local_kms.start()
    assert not RewrapJob.objects.exists()  # nothing switched while KMS could not verify the key


def test_resume_dry_run_and_mismatched_arn(org, org_admin, linked_key, new_cmek, notes):
    from encryption_keys.lifecycle import replace_key

    job = replace_key(organization=org, region="us", new_key_ref=new_cmek, actor=org_admin, start=False)
    out, _ = run("--org", org.name, "--region", "us", "--resume", str(job.pk))
    assert "4 still under" in out and "Would re-wrap 4 data keys" in out
    assert RewrapJob.objects.get().state == RewrapState.PENDING
    with pytest.raises(CommandError, match="re-wraps to"):
        run("--org", org.name, "--region", "us", "--resume", str(job.pk), "--to-arn", linked_key.key_ref)
    with pytest.raises(CommandError, match="No re-wrap job"):
        run("--org", org.name, "--region", "eu", "--resume", str(job.pk))


@pytest.mark.parametrize("args, message", [
    (["--org", "Nobody", "--region", "us", "--to-arn", "x"], "No organization"),
    (["--org", "Acme", "--region", "zz", "--to-arn", "x"], "Unknown region"),
    (["--org", "Acme", "--region", "us"], "Give --to-arn"),
    (["--org", "Acme", "--region", "eu", "--to-arn", "x"], "No key is linked"),
])
def test_bad_input_is_a_command_error(org, linked_key, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not KmsCall.objects.filter(operation="ReEncrypt").exists()


@pytest.mark.parametrize(("count", "words"), [
    (0, "no key-service calls needed"),
    (1, "1 re-wrap call, one per data key"),
    (2, "2 re-wrap calls, one per data key"),
])
def test_the_plan_says_what_is_true_for_the_count(count, words):
    from encryption_keys.management.commands.rewrap_data_keys import rewrap_plan

    assert rewrap_plan(count).startswith(words) and "×" not in rewrap_plan(count)
