"""Crypto-shredding: only the shredded scope's data reports data_key_shredded; everything else still reads."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from encryption_keys import keyring
from encryption_keys.lifecycle import shred_data_keys
from encryption_keys.lifecycle.shred import data_keys_before, session_data_keys
from encryption_keys.models import DataKey
from konnect_admin.models import AuditEvent
from tests.testapp.models import SealedNote

pytestmark = pytest.mark.django_db


@pytest.fixture
def sessions(control_plane):
    """Two debug sessions of the org; notes written under a session's `scope_ref` stand for its data."""
    from debugger.models import DebugSession

    now = timezone.now()
    return [
        DebugSession.objects.create(control_plane=control_plane, duration_seconds=60, ends_at=now, retain_until=now)
        for _ in range(2)
    ]


def session_data_keys_of(org, session):
    return session_data_keys(organization=org, control_plane_id=session.control_plane_id, session_id=session.pk)


def write(org, scope_ref, count=3, *, prefix=""):
    for index in range(count):
        SealedNote.objects.create(organization=org, scope_ref=scope_ref, title=f"{prefix}{scope_ref}#{index}",
                                  text=f"{scope_ref} value {index}")


def outcomes():
    keyring.reset_for_tests()
    notes = list(SealedNote.objects.all())
    return {n.title: (r.value if r.ok else r.error.code.value)
            for n, r in zip(notes, keyring.reveal_many(n.text for n in notes), strict=True)}


def test_shred_one_session_only_its_data_is_gone(org, other_org, sessions, org_admin):
    doomed, kept = (s.scope_ref for s in sessions)
    write(org, doomed)
    write(org, kept)
    write(other_org, doomed, prefix="other:")  # same scope ref in another organization: not this org's session
    reader_cache = keyring.data_key_cache()
    reader_cache_before = len(reader_cache)

    count = shred_data_keys(queryset=session_data_keys_of(org, sessions[0]), actor=org_admin, reason="test")

    assert count == 1
    assert len(reader_cache) < reader_cache_before  # the writer's cached copy was dropped
    result = outcomes()
    assert {result[f"{doomed}#{i}"] for i in range(3)} == {"data_key_shredded"}
    assert [result[f"{kept}#{i}"] for i in range(3)] == [f"{kept} value {i}" for i in range(3)]
    assert [result[f"other:{doomed}#{i}"] for i in range(3)] == [f"{doomed} value {i}" for i in range(3)]
    shredded = DataKey.objects.get(organization=org, scope_ref=doomed)
    assert shredded.wrapped is None and shredded.shredded_at is not None and shredded.retired_at is not None
    assert DataKey.objects.get(organization=other_org, scope_ref=doomed).shredded_at is None
    event = AuditEvent.objects.get(action="encryption_key.data_keys_shredded")
    assert (event.organization, event.actor, event.details) == (org, org_admin, {"reason": "test", "data_keys": 1})


def test_shred_finds_a_sessions_keys_by_its_control_plane_too(org, sessions, control_plane):
    """A session's scope names its control plane: the same session id under another control plane (a session
    re-parented by an UPDATE after it wrote) is another scope, and shredding one leaves the other."""
    session = sessions[0]
    sibling = f"{control_plane.pk.hex[::-1]}/{session.pk}"
    write(org, session.scope_ref, 1)
    write(org, sibling, 1, prefix="sibling:")
    assert shred_data_keys(queryset=session_data_keys_of(org, session), actor=None, reason="test") == 1
    assert DataKey.objects.get(scope_ref=sibling).shredded_at is None
    assert DataKey.objects.get(scope_ref=f"{control_plane.pk}/{session.pk}").shredded_at is not None


def test_shredding_twice_counts_once(org, sessions):
    write(org, sessions[0].scope_ref)
    queryset = session_data_keys_of(org, sessions[0])
    assert shred_data_keys(queryset=queryset, actor=None, reason="first") == 1
    assert shred_data_keys(queryset=queryset, actor=None, reason="again") == 0


def test_writes_after_a_shred_get_a_fresh_key(org, sessions):
    scope = sessions[0].scope_ref
    write(org, scope, 1)
    shred_data_keys(queryset=session_data_keys_of(org, sessions[0]), actor=None, reason="test")
    SealedNote.objects.create(organization=org, scope_ref=scope, title="later", text="written later")
    assert outcomes()["later"] == "written later"
    assert DataKey.objects.filter(scope_ref=scope, shredded_at__isnull=True).count() == 1


def test_before_only_takes_keys_that_stopped_encrypting_earlier(org):
    write(org, "old-scope", 1)
    write(org, "new-scope", 1)
    cutoff = timezone.now()
    DataKey.objects.filter(scope_ref="old-scope").update(encrypt_until=cutoff - timedelta(days=2))
    assert list(data_keys_before(organization=org, before=cutoff).values_list("scope_ref", flat=True)) == ["old-scope"]


# --- the command --------------------------------------------------------------------------------------------


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("shred", *args, stdout=out, stderr=err)
    return out.getvalue()


def test_command_dry_run_changes_nothing(org, sessions):
    write(org, sessions[0].scope_ref, 4)
    out = run("--org", org.name, "--session", str(sessions[0].pk))
    assert "Would shred 1 data keys" in out and "4 records would become unreadable" in out and "Dry run" in out
    assert not DataKey.objects.filter(shredded_at__isnull=False).exists()
    assert set(outcomes().values()) == {f"{sessions[0].scope_ref} value {i}" for i in range(4)}


def test_command_shreds_a_session(org, sessions):
    doomed, kept = (s.scope_ref for s in sessions)
    write(org, doomed, 2)
    write(org, kept, 2)
    out = run("--org", str(org.pk), "--session", str(sessions[0].pk), "--yes")
    assert f"Shredded 1 data keys of debug session {sessions[0].pk}" in out and "2 records now report data_key_shredded" in out
    result = outcomes()
    assert {result[f"{doomed}#0"], result[f"{doomed}#1"]} == {"data_key_shredded"}
    assert result[f"{kept}#0"] == f"{kept} value 0"
    event = AuditEvent.objects.get(action="encryption_key.data_keys_shredded")
    assert event.actor is None and event.actor_label == "system"


def test_command_shreds_before_a_date(org):
    write(org, "ancient", 2)
    write(org, "recent", 2)
    DataKey.objects.filter(scope_ref="ancient").update(encrypt_until=timezone.now() - timedelta(days=40))
    out = run("--org", org.name, "--before", (timezone.now() - timedelta(days=30)).date().isoformat(), "--yes")
    assert "Shredded 1 data keys" in out
    result = outcomes()
    assert result["ancient#0"] == "data_key_shredded" and result["recent#0"] == "recent value 0"


def test_command_shreds_a_config_store(org, control_plane):
    from vault.models import ConfigStore

    store = ConfigStore.objects.create(control_plane=control_plane, name="payments")
    DataKey.objects.create(organization=org, region="us", purpose="vault.secret", scope_ref=store.scope_ref,
                           wrapping_key_ref="arn:aws:kms:us-west-2:123456789012:key/x", wrapped=b"w",
                           encrypt_until=timezone.now())
    out = run("--org", org.name, "--config-store", str(store.pk), "--yes")
    assert "Shredded 1 data keys of config store" in out
    assert DataKey.objects.get(scope_ref=f"{control_plane.pk}/{store.pk}").wrapped is None


@pytest.mark.parametrize("args, message", [
    (["--org", "Nope", "--before", "2020-01-01"], "No organization"),
    (["--org", "Acme", "--before", "yesterday"], "is not a date"),
    (["--org", "Acme", "--before", "2026-13-45"], "is not a date"),
    (["--org", "Acme", "--session", "not-a-uuid"], "is not a debug session id"),
    (["--org", "Acme", "--session", "8a4c1a3e-51f6-4bcb-9b8e-2f8f0d6f3f00"], "No debug session"),
    (["--org", "Acme", "--config-store", "8a4c1a3e-51f6-4bcb-9b8e-2f8f0d6f3f00"], "No config store"),
])
def test_command_bad_input_is_a_command_error(org, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_command_refuses_another_orgs_session(org, other_org, sessions):
    with pytest.raises(CommandError, match="No debug session"):
        run("--org", other_org.name, "--session", str(sessions[0].pk), "--yes")


def test_command_with_nothing_to_shred(org):
    assert "Nothing to shred" in run("--org", org.name, "--before", "2000-01-01", "--yes")


# --- the --before guard ---------------------------------------------------------------------------------------


def test_command_refuses_a_date_that_takes_data_keys_still_in_use(org):
    write(org, "ancient", 1)
    write(org, "current", 2)
    retired_at = timezone.now() - timedelta(days=40)
    DataKey.objects.filter(scope_ref="ancient").update(encrypt_until=retired_at)
    for args in (("--before", "2030-01-01"), ("--before", "2030-01-01", "--yes")):
        with pytest.raises(CommandError, match=r"would shred 1 data key still in use") as refused:
            run("--org", org.name, *args)
        assert f"stopped encrypting on {retired_at:%Y-%m-%d}" in str(refused.value)
        assert "--force" in str(refused.value)
    assert not DataKey.objects.filter(shredded_at__isnull=False).exists()
    assert outcomes()["current#1"] == "current value 1"


def test_command_refusal_says_when_nothing_was_ever_retired(org):
    write(org, "current", 1)
    with pytest.raises(CommandError, match="No data key has been retired yet"):
        run("--org", org.name, "--before", (timezone.now() + timedelta(days=3650)).date().isoformat())


def test_command_takes_a_date_up_to_the_newest_retired_key(org):
    write(org, "ancient", 1)
    write(org, "current", 1)
    DataKey.objects.filter(scope_ref="ancient").update(encrypt_until=timezone.now() - timedelta(days=40))
    out = run("--org", org.name, "--before", (timezone.now() - timedelta(days=1)).isoformat(), "--yes")
    assert "Shredded 1 data keys" in out and outcomes()["current#0"] == "current value 0"


def test_command_force_shreds_data_keys_still_in_use(org):
    write(org, "current", 1)
    out = run("--org", org.name, "--before", "2030-01-01", "--yes", "--force")
    assert "Shredded 1 data keys" in out and outcomes()["current#0"] == "data_key_shredded"
