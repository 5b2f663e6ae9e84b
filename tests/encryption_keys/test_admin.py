"""The platform admin site: keys, data keys and KMS calls are readable; key material never shows."""

import base64

import pytest
from django.urls import reverse

from encryption_keys import services
from encryption_keys.models import DataKey, EncryptionKey, KmsCall
from konnect_admin.models import User
from tests.testapp.models import SealedNote

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = User.objects.create_superuser(email="ops@platform.test", password="x-long-password-1")
    client.force_login(user)
    return client


@pytest.fixture
def data(org, org_admin, cmek, kms_calls):
    key = services.link_key(organization=org, region="us", key_ref=cmek, name="Acme US", actor=org_admin).key
    SealedNote.objects.create(organization=org, text="plaintext-never-in-admin")
    kms_calls()  # flush the call log
    return key


def assert_no_key_material(body: str, data_key: DataKey):
    wrapped = bytes(data_key.wrapped)
    assert wrapped
    for rendering in (wrapped.hex(), base64.b64encode(wrapped).decode(), repr(wrapped)[2:40]):
        assert rendering not in body
    assert "plaintext-never-in-admin" not in body


def test_encryption_key_list_and_change_page_with_status_history(operator, data):
    listing = operator.get(reverse("admin:encryption_keys_encryptionkey_changelist")).content.decode()
    for text in ("Acme", "Acme US", "Healthy", "Last checked at"):
        assert text in listing
    page = operator.get(reverse("admin:encryption_keys_encryptionkey_change", args=[data.pk]))
    body = page.content.decode()
    assert page.status_code == 200
    assert data.key_ref in body and "Linked after verification." in body  # the status-history inline
    assert 'name="name"' not in body  # read-only: changes go through the app (verification, audit)


def test_data_key_list_and_change_page_never_show_the_wrapped_key(operator, data, cmek):
    data_key = DataKey.objects.get(wrapping_key_ref=cmek)
    listing = operator.get(reverse("admin:encryption_keys_datakey_changelist")).content.decode()
    for column in ("Purpose", "Scope ref", "Wrapping key ref", "Encrypt until", "Usage count", "Shredded at"):
        assert column in listing
    assert str(data_key.pk) in listing and cmek in listing
    assert_no_key_material(listing, data_key)
    page = operator.get(reverse("admin:encryption_keys_datakey_change", args=[data_key.pk]))
    body = page.content.decode()
    assert page.status_code == 200 and str(data_key.pk) in body
    assert "field-wrapped" not in body and ">Wrapped:<" not in body and 'name="wrapped"' not in body
    assert_no_key_material(body, data_key)


def test_kms_calls_are_read_only(operator, data):
    call = KmsCall.objects.filter(operation="GenerateDataKey").first()
    listing = operator.get(reverse("admin:encryption_keys_kmscall_changelist")).content.decode()
    assert "GenerateDataKey" in listing and "DescribeKey" in listing
    assert operator.get(reverse("admin:encryption_keys_kmscall_add")).status_code == 403
    response = operator.post(reverse("admin:encryption_keys_kmscall_change", args=[call.pk]), {"outcome": "forged"})
    assert response.status_code == 403
    assert KmsCall.objects.get(pk=call.pk).outcome == "ok"
    assert operator.post(reverse("admin:encryption_keys_kmscall_delete", args=[call.pk]), {"post": "yes"}).status_code == 403


def test_nothing_can_be_added_or_deleted(operator, data):
    assert operator.get(reverse("admin:encryption_keys_encryptionkey_add")).status_code == 403
    assert operator.get(reverse("admin:encryption_keys_datakey_add")).status_code == 403
    response = operator.post(reverse("admin:encryption_keys_encryptionkey_delete", args=[data.pk]), {"post": "yes"})
    assert response.status_code == 403 and EncryptionKey.objects.filter(pk=data.pk).exists()


def test_org_admins_are_not_platform_operators(login, org_admin, data):
    response = login(org_admin).get(reverse("admin:encryption_keys_datakey_changelist"))
    assert response.status_code == 302 and "/login/" in response["Location"]
