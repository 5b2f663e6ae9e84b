"""Replacing a key: re-wrap every data key, KMS calls ∝ data keys, no record rewritten, nothing lost."""

import hashlib

import pytest
from django.core.exceptions import PermissionDenied

from encryption_keys import keyring, local_kms
from encryption_keys.lifecycle import KeyReplacementError, KeyVerificationFailed, replace_key
from encryption_keys.lifecycle import rewrap as rewrap_module
from encryption_keys.lifecycle.models import RewrapFailure, RewrapJob, RewrapState
from encryption_keys.models import DataKey, EncryptionKey
from encryption_keys.providers.aws import kms
from konnect_admin.models import AuditEvent
from tests import factories
from tests.testapp.models import SealedNote

pytestmark = pytest.mark.django_db
SCOPES = 20
PER_SCOPE = 500


def plaintext(scope: int, index: int) -> str:
    return f"scope-{scope:02d} note {index} · secret ✓"


def write_notes(org, *, scopes: int, per_scope: int, batch: int = 1000) -> None:
    notes = [
        SealedNote(organization=org, scope_ref=f"scope-{s:02d}", title=f"{s}:{i}", text=plaintext(s, i))
        for s in range(scopes) for i in range(per_scope)
    ]
    for start in range(0, len(notes), batch):
        SealedNote.objects.bulk_create(notes[start:start + batch])


def envelopes_digest() -> str:
    digest = hashlib.sha256()
    for pk, envelope in SealedNote.objects.order_by("pk").values_list("pk", "text"):
        digest.update(pk.bytes + bytes(envelope))
    return digest.hexdigest()


def reveal_all() -> dict[str, object]:
    """title → plaintext (or the error code), read by a process that has never seen the keys."""
    keyring.reset_for_tests()
    notes = list(SealedNote.objects.order_by("pk"))
    results = keyring.reveal_many(note.text for note in notes)
    return {n.title: (r.value if r.ok else r.error.code.value) for n, r in zip(notes, results, strict=True)}


def test_replace_10000_records_20_data_keys_with_20_reencrypt_calls(org, org_admin, linked_key, new_cmek, kms_calls):
    old = linked_key.key_arn
    write_notes(org, scopes=SCOPES, per_scope=PER_SCOPE)
    assert DataKey.objects.filter(wrapping_key_arn=old).count() == SCOPES
    before = envelopes_digest()

    job = replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=org_admin)

    assert (job.state, job.total, job.done, job.failed) == (RewrapState.COMPLETED, SCOPES, SCOPES, 0)
    reencrypts = kms_calls(operation="ReEncrypt")
    assert reencrypts.count() == SCOPES
    assert set(reencrypts.values_list("outcome", flat=True)) == {"ok"}
    assert kms_calls(operation="Encrypt").count() == 0  # no fallback was needed
    contexts = {call.encryption_context["konnect:datakey"] for call in reencrypts}
    assert contexts == {str(pk) for pk in DataKey.objects.values_list("pk", flat=True)}
    assert envelopes_digest() == before  # no record was rewritten
    assert set(DataKey.objects.values_list("wrapping_key_arn", flat=True)) == {new_cmek}
    assert not DataKey.objects.filter(rewrapped_at__isnull=True).exists()
    assert EncryptionKey.objects.get(pk=linked_key.pk).key_arn == new_cmek

    decrypts_before = kms_calls(operation="Decrypt").count()
    revealed = reveal_all()
    assert revealed == {f"{s}:{i}": plaintext(s, i) for s in range(SCOPES) for i in range(PER_SCOPE)}
    reads = kms_calls(operation="Decrypt")[: kms_calls(operation="Decrypt").count() - decrypts_before]
    assert {call.key_arn for call in reads} == {new_cmek}  # read through the new key only
    assert len(reads) == SCOPES


def test_a_local_kms_that_accepts_late_does_not_interrupt_the_rewrap(
    org, org_admin, linked_key, new_cmek, kms_calls, kms_accepting_late, settings
):
    """Under load the re-wrap above once ended `failed` (kms_unavailable): its 8 calls in flight opened 8
    connections at once while the local KMS's accept loop was starved, the listen queue held 6, and the
    dropped SYN was resent after 1 s = KMS_CONNECT_TIMEOUT. Here the accept loop is late on purpose."""
    settings.KEY_REWRAP_CONCURRENCY = 8
    write_notes(org, scopes=SCOPES, per_scope=2)
    job = replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=org_admin, start=False)
    kms.reset_clients()  # no pooled connection: each call in flight opens its own

    with kms_accepting_late(connections=rewrap_module.concurrency()):
        job = rewrap_module.rewrap_data_keys(job)

    assert set(kms_calls(operation="ReEncrypt").values_list("outcome", flat=True)) == {"ok"}
    assert (job.state, job.done, job.failed) == (RewrapState.COMPLETED, SCOPES, 0)
    assert set(DataKey.objects.values_list("wrapping_key_arn", flat=True)) == {new_cmek}


@pytest.mark.parametrize("same_created_at", [False, True], ids=["distinct-times", "one-timestamp"])
def test_pages_smaller_than_the_calls_in_flight_rewrap_each_data_key_once(
    org, org_admin, linked_key, new_cmek, kms_calls, monkeypatch, settings, same_created_at
):
    """The next page is read while the previous page's KMS calls are in flight: none is read twice or skipped,
    also when DEKs share a created_at (the keyset then orders by id)."""
    monkeypatch.setattr(rewrap_module, "BATCH_SIZE", 3)
    settings.KEY_REWRAP_CONCURRENCY = 8
    settings.KEY_REWRAP_COMMIT_EVERY = 4
    write_notes(org, scopes=SCOPES, per_scope=5)
    if same_created_at:
        DataKey.objects.update(created_at=DataKey.objects.earliest("created_at").created_at)
    passes = []
    in_pages = rewrap_module._in_pages
    monkeypatch.setattr(rewrap_module, "_in_pages", lambda pending: passes.append(1) or in_pages(pending))

    job = replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=org_admin)

    assert (job.state, job.done, job.failed) == (RewrapState.COMPLETED, SCOPES, 0)
    assert len(passes) == 2  # one pass read all 20 DEKs, page by page; the second found none left
    contexts = [call.encryption_context["konnect:datakey"] for call in kms_calls(operation="ReEncrypt")]
    assert sorted(contexts) == sorted(str(pk) for pk in DataKey.objects.values_list("pk", flat=True))
    assert set(DataKey.objects.values_list("wrapping_key_arn", flat=True)) == {new_cmek}
    assert reveal_all() == {f"{s}:{i}": plaintext(s, i) for s in range(SCOPES) for i in range(5)}


def test_data_stays_readable_after_the_old_key_is_disabled(org, org_admin, linked_key, new_cmek):
    write_notes(org, scopes=3, per_scope=5)
    replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=org_admin)
    local_kms.disable_key(linked_key.key_arn)
    try:
        assert set(reveal_all().values()) == {plaintext(s, i) for s in range(3) for i in range(5)}
    finally:
        local_kms.enable_key(linked_key.key_arn)


def test_new_writes_use_the_new_key_from_the_switch(org, org_admin, linked_key, new_cmek):
    SealedNote.objects.create(organization=org, scope_ref="live", text="before")
    replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=org_admin, start=False)
    # The re-wrap has not even started: the next write already gets a DEK under the new key.
    SealedNote.objects.create(organization=org, scope_ref="other", text="after")
    assert DataKey.objects.get(scope_ref="other").wrapping_key_arn == new_cmek
    assert DataKey.objects.get(scope_ref="live").wrapping_key_arn == linked_key.key_arn


def test_writes_between_data_keys_lose_nothing(org, org_admin, linked_key, new_cmek):
    """Ingest interleaved with the re-wrap (after every DEK) into old scopes and new ones."""
    from encryption_keys.lifecycle import rewrap_data_keys

    write_notes(org, scopes=5, per_scope=3)
    job = replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=org_admin, start=False)
    written = []

    def ingest(progress_job):
        for scope in (f"scope-{progress_job.done % 5:02d}", f"fresh-{progress_job.done}"):
            title = f"live:{scope}:{len(written)}"
            SealedNote.objects.create(organization=org, scope_ref=scope, title=title, text=title.upper())
            written.append(title)

    job = rewrap_data_keys(job, on_progress=ingest)
    assert job.state == RewrapState.COMPLETED
    assert set(DataKey.objects.values_list("wrapping_key_arn", flat=True)) == {new_cmek}
    revealed = reveal_all()
    assert len(revealed) == 15 + len(written) == 25
    assert all(revealed[title] == title.upper() for title in written)
    assert all(revealed[f"{s}:{i}"] == plaintext(s, i) for s in range(5) for i in range(3))


def test_reencrypt_refused_falls_back_to_decrypt_and_encrypt(org, org_admin, linked_key, kms_calls):
    deny_reencrypt = {"Version": "2012-10-17", "Statement": [
        {"Sid": "NoReEncrypt", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:ReEncrypt*", "Resource": "*"},
    ]}
    new_arn = local_kms.create_key(region="us-west-2", multi_region=True, policy=deny_reencrypt)
    local_kms.replicate_key(new_arn, to_region="us-east-2")
    write_notes(org, scopes=4, per_scope=10)

    job = replace_key(organization=org, region="us", new_key_arn=new_arn, actor=org_admin)

    assert (job.state, job.done) == (RewrapState.COMPLETED, 4)
    assert list(kms_calls(operation="ReEncrypt").values_list("outcome", flat=True)) == ["key_access_denied"] * 4
    assert kms_calls(operation="Encrypt", outcome="ok", key_arn=new_arn).count() == 4
    assert kms_calls(operation="Decrypt", outcome="ok", key_arn=linked_key.key_arn).count() >= 4
    encrypt_contexts = sorted(sorted(c.encryption_context.items()) for c in kms_calls(operation="Encrypt"))
    assert encrypt_contexts == sorted(sorted(dk.encryption_context().items()) for dk in DataKey.objects.all())
    assert set(reveal_all().values()) == {plaintext(s, i) for s in range(4) for i in range(10)}


def test_old_key_disabled_before_replacement_reports_every_stranded_data_key(org, org_admin, linked_key, new_cmek):
    write_notes(org, scopes=6, per_scope=4)
    old_wrapped = dict(DataKey.objects.values_list("pk", "wrapped"))
    local_kms.disable_key(linked_key.key_arn)
    try:
        job = replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=org_admin)
        assert (job.state, job.total, job.done, job.failed) == (RewrapState.COMPLETED_WITH_FAILURES, 6, 0, 6)
        failures = RewrapFailure.objects.filter(job=job)
        assert sorted(f.data_key_id for f in failures) == sorted(old_wrapped)
        assert set(failures.values_list("code", flat=True)) == {"key_disabled"}
        # Left under the old key, untouched: readable by nobody while it is revoked, never dropped.
        for data_key in DataKey.objects.all():
            assert data_key.wrapping_key_arn == linked_key.key_arn
            assert bytes(data_key.wrapped) == bytes(old_wrapped[data_key.pk])
        assert set(reveal_all().values()) == {"key_disabled"}
        finished = AuditEvent.objects.get(action="encryption_key.rewrap_finished")
        assert finished.details["outcome"] == "completed_with_failures" and finished.details["failed"] == 6
    finally:
        local_kms.enable_key(linked_key.key_arn)
    # Once the old key is back, a retry moves them and forgets the failures.
    from encryption_keys.lifecycle import resume_rewrap

    job = resume_rewrap(job=job, actor=org_admin)
    assert (job.state, job.done, job.failed) == (RewrapState.COMPLETED, 6, 0)
    assert not RewrapFailure.objects.exists()
    assert set(reveal_all().values()) == {plaintext(s, i) for s in range(6) for i in range(4)}


def test_only_the_data_keys_the_policy_refuses_are_stranded(org, org_admin, linked_key, new_cmek):
    write_notes(org, scopes=5, per_scope=2)
    refused = [str(pk) for pk in DataKey.objects.order_by("pk").values_list("pk", flat=True)[:2]]
    local_kms.put_key_policy(linked_key.key_arn, {"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyTwo", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": ["kms:Decrypt", "kms:ReEncrypt*"],
        "Resource": "*", "Condition": {"StringEquals": {"kms:EncryptionContext:konnect:datakey": refused}},
    }]})
    try:
        job = replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=org_admin)
    finally:
        local_kms.put_key_policy(linked_key.key_arn, {"Version": "2012-10-17", "Statement": []})
    assert (job.state, job.done, job.failed) == (RewrapState.COMPLETED_WITH_FAILURES, 3, 2)
    assert sorted(str(f.data_key_id) for f in job.failures.all()) == sorted(refused)
    assert set(job.failures.values_list("code", flat=True)) == {"key_access_denied"}
    under = dict(DataKey.objects.values_list("pk", "wrapping_key_arn"))
    assert {str(pk) for pk, arn in under.items() if arn == linked_key.key_arn} == set(refused)


def test_audit_events_at_start_and_end(org, org_admin, linked_key, new_cmek):
    write_notes(org, scopes=2, per_scope=1)
    job = replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=org_admin, name="second",
                      description="replacement")
    events = {e.action: e for e in AuditEvent.objects.filter(organization=org, action__startswith="encryption_key.")}
    replaced = events["encryption_key.replaced"]
    assert replaced.actor == org_admin
    assert replaced.details["old_key_arn"] == linked_key.key_arn and replaced.details["new_key_arn"] == new_cmek
    assert replaced.details["rewrap_job"] == job.pk and replaced.details["data_keys"] == 2
    assert events["encryption_key.rewrap_started"].target_id == str(job.pk)
    assert events["encryption_key.rewrap_finished"].details["rewrapped"] == 2
    key = EncryptionKey.objects.get(pk=linked_key.pk)
    assert (key.name, key.description) == ("second", "replacement")


def test_only_an_org_admin_may_replace(org, linked_key, new_cmek):
    for role in ("org_admin_read_only", "cp_admin", "member"):
        with pytest.raises(PermissionDenied):
            replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=factories.make_role_user(org, role))
    assert not RewrapJob.objects.exists()
    assert EncryptionKey.objects.get(pk=linked_key.pk).key_arn == linked_key.key_arn


def test_another_orgs_admin_may_not_replace(org, other_org_admin, linked_key, new_cmek):
    with pytest.raises(PermissionDenied):
        replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=other_org_admin)


def test_replacing_needs_a_linked_key(org, org_admin, new_cmek):
    with pytest.raises(KeyReplacementError) as excinfo:
        replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=org_admin)
    assert excinfo.value.code == "no_key"
    assert "link a key first" in str(excinfo.value)


def test_same_arn_is_not_a_replacement(org, org_admin, linked_key):
    with pytest.raises(KeyReplacementError) as excinfo:
        replace_key(organization=org, region="us", new_key_arn=f" {linked_key.key_arn} ", actor=org_admin)
    assert excinfo.value.code == "same_key"


@pytest.mark.parametrize("make_arn, failed_check", [
    (lambda: "arn:aws:kms:us-west-2:123456789012:alias/mine", "arn_syntax"),
    (lambda: local_kms.create_key(region="eu-central-1", multi_region=True), "arn_region"),
    (lambda: local_kms.create_key(region="us-west-2", key_spec="RSA_2048", key_usage="ENCRYPT_DECRYPT"), "key_spec"),
])
def test_new_key_must_pass_the_checklist(org, org_admin, linked_key, make_arn, failed_check):
    SealedNote.objects.create(organization=org, text="kept")
    arn = make_arn()
    with pytest.raises(KeyVerificationFailed) as excinfo:
        replace_key(organization=org, region="us", new_key_arn=arn, actor=org_admin)
    assert failed_check in {check.id for check in excinfo.value.checklist.failures}
    assert not RewrapJob.objects.exists()
    assert EncryptionKey.objects.get(pk=linked_key.pk).key_arn == linked_key.key_arn
    assert set(DataKey.objects.values_list("wrapping_key_arn", flat=True)) == {linked_key.key_arn}


def test_disabled_new_key_is_refused(org, org_admin, linked_key, new_cmek):
    local_kms.disable_key(new_cmek)
    with pytest.raises(KeyVerificationFailed) as excinfo:
        replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=org_admin)
    assert "key_state" in {check.id for check in excinfo.value.checklist.failures}


def test_one_replacement_at_a_time(org, org_admin, linked_key, new_cmek):
    first = replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=org_admin, start=False)
    third = local_kms.create_key(region="us-west-2", multi_region=True)
    with pytest.raises(KeyReplacementError) as excinfo:
        replace_key(organization=org, region="us", new_key_arn=third, actor=org_admin)
    assert excinfo.value.code == "replacement_in_progress"
    assert f"--resume {first.pk}" in str(excinfo.value)


def test_other_organizations_and_regions_are_untouched(org, other_org, org_admin, linked_key, new_cmek):
    SealedNote.objects.create(organization=org, scope_ref="us-data", text="mine")
    SealedNote.objects.create(organization=org, region="eu", scope_ref="eu-data", text="mine in eu")
    SealedNote.objects.create(organization=other_org, scope_ref="theirs", text="theirs")
    before = dict(DataKey.objects.exclude(scope_ref="us-data").values_list("pk", "wrapping_key_arn"))
    job = replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=org_admin)
    assert job.done == 1
    assert dict(DataKey.objects.exclude(scope_ref="us-data").values_list("pk", "wrapping_key_arn")) == before
    assert DataKey.objects.get(scope_ref="us-data").wrapping_key_arn == new_cmek
