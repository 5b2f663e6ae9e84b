"""Encrypted fields end to end: the local KMS over HTTP, the database, the envelope."""

import json
import pickle
import uuid

import pytest
from django.core.exceptions import FieldError
from django.db import connection, models, transaction
from django.test.utils import isolate_apps

from encryption_keys import keyring
from encryption_keys.envelope import OVERHEAD, DecryptionError, EncryptionUnavailable
from encryption_keys.fields import EncryptedTextField, SealedValue
from encryption_keys.models import DataKey
from tests import leaks
from tests.testapp.models import SealedNote

pytestmark = pytest.mark.django_db

SECRET = leaks.plant("card=4111-1111-1111-1111;cvv=737")


def raw_column(note, column):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM testapp_sealednote WHERE id = %s", [note.pk.hex if connection.vendor == "sqlite" else note.pk])  # noqa: S608
        value = cursor.fetchone()[0]
    return bytes(value) if value is not None else None


def write_raw(note, column, value: bytes):
    """An UPDATE below the ORM, as someone with SQL access would write."""
    pk = note.pk.hex if connection.vendor == "sqlite" else note.pk
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE testapp_sealednote SET {column} = %s WHERE id = %s", [value, pk])  # noqa: S608


def test_round_trip_of_every_field_kind(org):
    note = SealedNote.objects.create(organization=org, text=SECRET, data={"a": [1, "é"]}, blob=b"\x00\xffraw")
    fresh = SealedNote.objects.get(pk=note.pk)
    assert isinstance(fresh.text, SealedValue)
    assert fresh.text.reveal() == SECRET
    assert fresh.data.reveal() == {"a": [1, "é"]}
    assert fresh.blob.reveal() == b"\x00\xffraw"


def test_column_holds_the_v2_envelope_not_plaintext(org):
    note = SealedNote.objects.create(organization=org, text=SECRET, data={"secret": SECRET})
    stored = raw_column(note, "text")
    assert stored[0] == 2
    assert len(stored) == len(SECRET.encode()) + OVERHEAD
    assert SECRET.encode() not in stored
    assert uuid.UUID(bytes=stored[1:17]) == DataKey.objects.get().pk
    assert SECRET.encode() not in raw_column(note, "data")


def test_sealed_value_never_shows_plaintext(org):
    note = SealedNote.objects.create(organization=org, text=SECRET)
    fresh = SealedNote.objects.get(pk=note.pk)
    assert str(fresh.text) == "[encrypted]"
    assert SECRET not in repr(fresh.text)
    assert SECRET not in f"{fresh.text} {fresh.text!r}"
    with pytest.raises(TypeError):
        pickle.dumps(fresh.text)
    unsaved = SealedNote(organization=org, text=SECRET)
    assert str(unsaved.text) == "[encrypted]" and SECRET not in repr(unsaved.text)


def test_value_copied_to_another_row_fails_integrity(org):
    a = SealedNote.objects.create(organization=org, text=SECRET)
    b = SealedNote.objects.create(organization=org, text="other")
    write_raw(b, "text", raw_column(a, "text"))
    with pytest.raises(DecryptionError) as excinfo:
        SealedNote.objects.get(pk=b.pk).text.reveal()
    assert excinfo.value.code == "integrity"


def test_value_copied_to_another_field_fails_integrity(org):
    note = SealedNote.objects.create(organization=org, text=SECRET, blob=b"x")
    write_raw(note, "blob", raw_column(note, "text"))
    with pytest.raises(DecryptionError) as excinfo:
        SealedNote.objects.get(pk=note.pk).blob.reveal()
    assert excinfo.value.code == "integrity"


def test_value_copied_to_another_tenant_fails(org, other_org):
    mine = SealedNote.objects.create(organization=org, text=SECRET)
    theirs = SealedNote.objects.create(organization=other_org, text="theirs")
    write_raw(theirs, "text", raw_column(mine, "text"))
    result = SealedNote.objects.get(pk=theirs.pk).text.reveal_or_error()
    assert not result.ok and result.error.code == "integrity"


@pytest.mark.parametrize("offset", [0, 5, 20, 35, -1])
def test_tampered_bytes_fail_integrity(org, offset):
    note = SealedNote.objects.create(organization=org, text=SECRET)
    stored = bytearray(raw_column(note, "text"))
    stored[offset] ^= 0x01
    write_raw(note, "text", bytes(stored))
    result = SealedNote.objects.get(pk=note.pk).text.reveal_or_error()
    assert result.error is not None
    # a flipped DEK id points at no data key: that reads as a destroyed key, everything else as integrity
    assert result.error.code in ({"data_key_shredded", "integrity"} if 1 <= offset < 17 else {"integrity"})


def test_only_isnull_lookups(org):
    SealedNote.objects.create(organization=org, text=SECRET)
    SealedNote.objects.create(organization=org)
    assert SealedNote.objects.filter(text__isnull=True).count() == 1
    for lookup in ({"text": SECRET}, {"text__contains": "card"}, {"text__startswith": "c"}):
        with pytest.raises(FieldError, match="encrypted"):
            SealedNote.objects.filter(**lookup).count()


def test_queryset_update_cannot_write_plaintext(org):
    note = SealedNote.objects.create(organization=org, text=SECRET)
    for value in ("plain", b"plain bytes"):
        with pytest.raises(TypeError), transaction.atomic():
            SealedNote.objects.filter(pk=note.pk).update(text=value)
    assert raw_column(note, "text")[0] == 2


def test_bulk_create_seals_every_value(org):
    notes = SealedNote.objects.bulk_create([SealedNote(organization=org, text=f"{SECRET}-{i}") for i in range(20)])
    assert all(raw_column(note, "text")[0] == 2 for note in notes)
    assert sorted(v.text.reveal() for v in SealedNote.objects.all()) == sorted(f"{SECRET}-{i}" for i in range(20))


def test_dumpdata_serializes_masks(org):
    from django.core import serializers

    SealedNote.objects.create(organization=org, text=SECRET)
    dumped = serializers.serialize("json", SealedNote.objects.all())
    assert SECRET not in dumped
    assert json.loads(dumped)[0]["fields"]["text"] == "[encrypted]"


def test_write_fails_closed_when_no_key_can_be_had(org, platform_keys, kms_calls):
    from devtools.local_kms import disable_key, enable_key

    disable_key(platform_keys["us"])
    try:
        with pytest.raises(EncryptionUnavailable) as excinfo, transaction.atomic():
            SealedNote.objects.create(organization=org, title="t", text=SECRET)
    finally:
        enable_key(platform_keys["us"])
    assert excinfo.value.code == "key_disabled"
    assert not SealedNote.objects.exists()
    assert not DataKey.objects.exists()
    assert kms_calls(operation="GenerateDataKey", outcome="key_disabled").count() == 1


@isolate_apps("tests.testapp")
def test_system_checks_reject_misuse():
    class Bad(models.Model):  # noqa: DJ008
        id = models.AutoField(primary_key=True)
        secret = EncryptedTextField(unique=True, db_index=True)

        class Meta:
            app_label = "testapp"

    ids = {error.id for error in Bad.check()}
    assert {"encryption_keys.E001", "encryption_keys.E002", "encryption_keys.E004", "encryption_keys.E005"} <= ids


def test_wrapping_key_is_the_linked_cmek(org, cmek, kms_calls):
    from encryption_keys.models import EncryptionKey

    EncryptionKey.objects.create(organization=org, region="us", name="k", key_ref=cmek)
    SealedNote.objects.create(organization=org, text=SECRET)
    assert DataKey.objects.get().wrapping_key_ref == cmek
    call = kms_calls(operation="GenerateDataKey").get()
    assert call.key_ref == cmek
    assert call.encryption_context == {
        "konnect:org": str(org.pk), "konnect:region": "us", "konnect:purpose": "debugger.payload",
        "konnect:datakey": str(DataKey.objects.get().pk),
    }


def test_without_cmek_the_platform_key_of_the_region_wraps(org, platform_keys):
    SealedNote.objects.create(organization=org, region="eu", text=SECRET)
    assert DataKey.objects.get().wrapping_key_ref == platform_keys["eu"]
    assert keyring.wrapping_key_ref(organization_id=org.pk, region="eu") == platform_keys["eu"]


@pytest.mark.parametrize("value", [{"a": "grüße ✓", "b": [1, 2.5, None, True]}, [], "x", 7, {"nested": {"k": ["v"]}}])
def test_json_values_are_sealed_as_compact_utf8(value):
    """The plaintext inside a JSON envelope: no spaces, non-ASCII as UTF-8 (not \\u escapes), the same bytes
    as json.dumps with those options."""
    encoded = SealedNote._meta.get_field("data").encode(value)
    assert encoded == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert json.loads(encoded) == value
    if isinstance(value, dict) and "a" in value:
        assert encoded == '{"a":"grüße ✓","b":[1,2.5,null,true]}'.encode()
