"""Data keys against the local KMS server over HTTP: lifetimes, cache, batch reveal, every error code."""

import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devtools import local_kms
from encryption_keys import keyring
from encryption_keys.envelope import DecryptionError, EncryptionUnavailable
from encryption_keys.keyring import writers
from encryption_keys.models import DataKey, EncryptionKey
from tests import leaks
from tests.testapp.models import SealedNote

pytestmark = pytest.mark.django_db
SECRET = leaks.plant("s3cret-payload")


def fresh_reader():
    """A process that has never seen the keys: empty DEK cache, no leases."""
    keyring.reset_for_tests()


def test_one_generate_data_key_per_dek_lifetime(org, kms_calls):
    for index in range(50):
        SealedNote.objects.create(organization=org, text=f"{SECRET}{index}")
    assert DataKey.objects.count() == 1
    assert kms_calls(operation="GenerateDataKey").count() == 1
    DataKey.objects.update(encrypt_until=timezone.now() - timedelta(seconds=1))
    fresh_reader()
    SealedNote.objects.create(organization=org, text=SECRET)
    assert DataKey.objects.count() == 2
    assert kms_calls(operation="GenerateDataKey").count() == 2


def test_use_budget_ends_a_dek(org, settings, kms_calls):
    settings.DATAKEY_MAX_USES = 3
    fresh_reader()
    for _ in range(7):
        SealedNote.objects.create(organization=org, text=SECRET)
    assert DataKey.objects.count() == 3
    assert all(row.usage_count <= 3 for row in DataKey.objects.all())
    assert sorted(n.text.reveal() for n in SealedNote.objects.all()) == [SECRET] * 7


def datakey_writes(queries) -> list[str]:
    return [query["sql"] for query in queries.captured_queries
            if "encryption_keys_datakey" in query["sql"] and query["sql"].startswith(("UPDATE", "INSERT"))]


@pytest.mark.django_db(transaction=True)  # lease_ahead reserves outside a transaction only
@pytest.mark.parametrize("uses", [10, 600])
def test_lease_ahead_reserves_for_several_batches_then_batches_take_no_reservation(org, uses):
    scope = SealedNote(organization=org).encryption_scope()
    fresh_reader()
    size = max(writers.LEASE_USES, writers.LEASE_BATCHES_AHEAD * uses)
    writers.lease_ahead(scope, uses)
    assert DataKey.objects.get().usage_count == size
    with CaptureQueriesContext(connection) as queries:
        for _ in range(size // uses):
            writers.lease_ahead(scope, uses)
            assert writers.active_cipher_for(scope, uses) is not None
    assert not datakey_writes(queries)
    with CaptureQueriesContext(connection) as queries:
        writers.lease_ahead(scope, uses)  # the lease is spent: one reservation, on the same data key
    assert len(datakey_writes(queries)) == 1
    assert DataKey.objects.get().usage_count == 2 * size


@pytest.mark.django_db(transaction=True)
def test_lease_ahead_never_reserves_past_the_use_budget(org, settings):
    settings.DATAKEY_MAX_USES = 1000  # less than lease_ahead would reserve for batches of 600 uses
    scope = SealedNote(organization=org).encryption_scope()
    fresh_reader()
    for _ in range(3):
        writers.lease_ahead(scope, 600)
        assert writers.active_cipher_for(scope, 600) is not None
    assert sorted(DataKey.objects.values_list("usage_count", flat=True)) == [1000, 1000, 1000]


def test_scopes_get_their_own_dek(org, other_org):
    SealedNote.objects.create(organization=org, scope_ref="session-a", text=SECRET)
    SealedNote.objects.create(organization=org, scope_ref="session-b", text=SECRET)
    SealedNote.objects.create(organization=other_org, scope_ref="session-a", text=SECRET)
    assert DataKey.objects.count() == 3
    assert set(DataKey.objects.values_list("scope_ref", flat=True)) == {"session-a", "session-b"}


def test_reveal_many_decrypts_each_dek_once(org, kms_calls):
    for index in range(200):
        SealedNote.objects.create(organization=org, scope_ref=f"s{index % 2}", text=f"{SECRET}-{index}")
    fresh_reader()
    before = kms_calls(operation="Decrypt").count()
    notes = list(SealedNote.objects.order_by("title", "id"))
    results = keyring.reveal_many(note.text for note in notes)
    assert kms_calls(operation="Decrypt").count() - before == 2
    assert all(result.ok for result in results)
    assert sorted(r.value for r in results) == sorted(f"{SECRET}-{i}" for i in range(200))


def test_cache_ttl_expiry_asks_kms_again(org, settings, kms_calls):
    settings.DATAKEY_CACHE_TTL = 1
    note = SealedNote.objects.create(organization=org, text=SECRET)
    fresh_reader()
    note = SealedNote.objects.get(pk=note.pk)
    note.text.reveal()
    note.text.reveal()
    assert kms_calls(operation="Decrypt").count() == 1
    time.sleep(1.1)
    assert note.text.reveal() == SECRET
    assert kms_calls(operation="Decrypt").count() == 2


def test_rolled_back_dek_is_not_reused(org):
    with pytest.raises(RuntimeError), transaction.atomic():
        SealedNote.objects.create(organization=org, text="rolled back")
        raise RuntimeError
    assert not DataKey.objects.exists()
    note = SealedNote.objects.create(organization=org, text=SECRET)
    assert DataKey.objects.count() == 1
    fresh_reader()
    assert SealedNote.objects.get(pk=note.pk).text.reveal() == SECRET


# --- every error code, end to end --------------------------------------------------------------------


@pytest.fixture
def linked_note(org, cmek):
    """A value under a DEK wrapped by the org's CMEK, read by a process with a cold cache."""
    EncryptionKey.objects.create(organization=org, region="us", name="k", key_ref=cmek)
    note = SealedNote.objects.create(organization=org, text=SECRET)
    fresh_reader()
    return SealedNote.objects.get(pk=note.pk)


def reveal_code(note):
    result = SealedNote.objects.get(pk=note.pk).text.reveal_or_error()
    assert result.value is None
    return result.error.code


def test_disabled_key(linked_note, cmek):
    local_kms.disable_key(cmek)
    assert reveal_code(linked_note) == "key_disabled"


def test_pending_deletion_key_shows_the_date(linked_note, cmek):
    deletion = local_kms.schedule_key_deletion(cmek, days=7)
    EncryptionKey.objects.filter(key_ref=cmek).update(deletion_date=deletion)
    with pytest.raises(DecryptionError) as excinfo:
        SealedNote.objects.get(pk=linked_note.pk).text.reveal()
    assert excinfo.value.code == "key_pending_deletion"
    assert excinfo.value.deletion_date == deletion
    assert deletion.strftime("%Y-%m-%d") in excinfo.value.message


def test_access_denied_by_key_policy(linked_note, cmek):
    local_kms.put_key_policy(cmek, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}]})
    assert reveal_code(linked_note) == "key_access_denied"


def test_key_not_found(linked_note, cmek):
    local_kms.delete_key_material_or_key(cmek)
    assert reveal_code(linked_note) == "key_not_found"


def test_shredded_data_key(linked_note):
    DataKey.objects.update(shredded_at=timezone.now(), wrapped=None)
    assert reveal_code(linked_note) == "data_key_shredded"


def test_missing_data_key_row(linked_note):
    DataKey.objects.all().delete()
    assert reveal_code(linked_note) == "data_key_shredded"


def test_kms_unavailable_then_recovers_without_restart(linked_note, local_kms, settings):
    settings.DATAKEY_FAILURE_TTL = 0
    fresh_reader()
    local_kms.stop()
    try:
        assert reveal_code(linked_note) == "kms_unavailable"
        with pytest.raises(EncryptionUnavailable) as excinfo, transaction.atomic():
            SealedNote.objects.create(organization=linked_note.organization, scope_ref="new-scope", text="x")
        assert excinfo.value.code == "kms_unavailable" and excinfo.value.retryable
        assert SealedNote.objects.count() == 1
    finally:
        local_kms.start()
    assert SealedNote.objects.get(pk=linked_note.pk).text.reveal() == SECRET


def test_failures_are_cached_briefly(linked_note, cmek, kms_calls):
    local_kms.disable_key(cmek)
    for _ in range(5):
        assert reveal_code(linked_note) == "key_disabled"
    assert kms_calls(operation="Decrypt", outcome="key_disabled").count() == 1


def test_integrity(linked_note):
    from tests.encryption_keys.test_fields import raw_column, write_raw

    stored = bytearray(raw_column(linked_note, "text"))
    stored[-1] ^= 0xFF
    write_raw(linked_note, "text", bytes(stored))
    assert reveal_code(linked_note) == "integrity"


def test_reveal_many_reports_errors_per_row(org, linked_note, cmek):
    SealedNote.objects.create(organization=org, region="eu", text="platform-wrapped")
    fresh_reader()
    local_kms.disable_key(cmek)
    results = keyring.reveal_many(note.text for note in SealedNote.objects.order_by("region"))
    assert [(r.value, r.error.code if r.error else None) for r in results] == [
        ("platform-wrapped", None), (None, "key_disabled")]
