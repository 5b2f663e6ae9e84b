"""Envelope materials (POST /materials/encryption, /materials/decryption) against the local KMS over HTTP:
Kong's schemas, system accounts with the Envelope Materials role only, the organization's CMEK and encryption
context, the key-usage log, the rate limit, and no plaintext data key anywhere but the response body."""

import base64
import json

import pytest
from django.db import connection

from devtools import local_kms as kms_admin
from encryption_keys import call_log
from encryption_keys.models import DataKey, EncryptionKey
from konnect_admin import system_accounts as accounts
from konnect_admin import tokens
from konnect_admin.models import Role
from tests import factories, leaks
from tests.encryption_keys.test_api import Spec
from tests.openapi import CMEK_SPEC

pytestmark = pytest.mark.django_db
ENCRYPTION, DECRYPTION = "/materials/encryption", "/materials/decryption"


@pytest.fixture(scope="module")
def spec():
    return Spec(CMEK_SPEC)


def link(organization, key_ref, region="us"):
    return EncryptionKey.objects.create(organization=organization, region=region, name="customer key", key_ref=key_ref)


def system_account_token(organization, *, role=True, name="materials"):
    admin = factories.make_role_user(organization, "org_admin")
    account = accounts.system_account_create(organization=organization, actor=admin, name=name)
    if role:
        accounts.system_account_role_assign(account=account, actor=admin, role=Role.ENVELOPE_MATERIALS)
    _token, text = accounts.system_account_token_create(account=account, actor=admin, name="app")
    return {"Authorization": f"Bearer {text}"}


@pytest.fixture
def linked(org, cmek):
    return link(org, cmek)


@pytest.fixture
def auth(org, linked):
    return system_account_token(org)


def encrypt(client, auth, base="/api/us/v0", **headers):
    return client.post(base + ENCRYPTION, headers={**auth, **headers})


def decrypt(client, auth, wrapped, base="/api/us/v0"):
    return client.post(base + DECRYPTION, data=json.dumps({"encrypted_data_key": wrapped}),
                       content_type="application/json", headers=auth)


def assert_no_store(response):
    assert "no-store" in response["Cache-Control"], response.get("Cache-Control")


def test_round_trip_matches_kongs_schemas_and_is_never_cached(client, spec, org, auth, kms_calls):
    response = encrypt(client, auth)
    assert response.status_code == 201, response.content
    material = spec.validate(response, ENCRYPTION, "post")
    assert_no_store(response)
    plaintext = base64.b64decode(material["plaintext_data_key"], validate=True)
    wrapped = base64.b64decode(material["encrypted_data_key"], validate=True)
    assert len(plaintext) == 32 and plaintext not in wrapped
    leaks.plant(material["plaintext_data_key"])

    opened = decrypt(client, auth, material["encrypted_data_key"])
    assert opened.status_code == 201, opened.content
    assert spec.validate(opened, DECRYPTION, "post") == {"plaintext_data_key": material["plaintext_data_key"]}
    assert_no_store(opened)
    second = spec.validate(encrypt(client, auth), ENCRYPTION, "post")
    assert second["plaintext_data_key"] != material["plaintext_data_key"], "a fresh data key every call"
    leaks.plant(second["plaintext_data_key"])

    calls = list(kms_calls(organization=org).order_by("created_at", "id"))
    assert [call.operation for call in calls] == ["GenerateDataKey", "Decrypt", "GenerateDataKey"]
    assert all(call.outcome == "ok" and call.key_ref == org.encryption_keys.get().key_ref for call in calls)
    assert all(call.encryption_context == {"konnect:org": str(org.pk), "konnect:region": "us",
                                           "konnect:purpose": "envelope.materials"} for call in calls)
    assert not DataKey.objects.exists(), "materials are the caller's: nothing is stored"


def test_no_plaintext_data_key_in_the_database(client, auth):
    material = encrypt(client, auth).json()
    leaks.plant(material["plaintext_data_key"])
    call_log.flush()
    raw = base64.b64decode(material["plaintext_data_key"])
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from the introspection
            for row in cursor.fetchall():
                for value in row:
                    value = bytes(value) if isinstance(value, memoryview) else value
                    assert raw != value and (not isinstance(value, bytes) or raw not in value), table
                    assert material["plaintext_data_key"] not in str(value), table


def test_a_wrapped_key_of_another_organization_is_refused(client, spec, org, other_org, auth, kms_calls):
    other_key = kms_admin.create_key(region="us-west-2", description="globex key")
    link(other_org, other_key)
    theirs = encrypt(client, system_account_token(other_org)).json()
    leaks.plant(theirs["plaintext_data_key"])
    assert decrypt(client, system_account_token(other_org, name="b"), theirs["encrypted_data_key"]).json() == {
        "plaintext_data_key": theirs["plaintext_data_key"]}, "any account with the role in that organization"
    response = decrypt(client, auth, theirs["encrypted_data_key"])
    assert response.status_code == 400
    body = spec.validate(response, DECRYPTION, "post")
    assert body["invalid_parameters"][0]["field"] == "encrypted_data_key"
    assert theirs["plaintext_data_key"] not in response.content.decode()
    assert_no_store(response)
    [refused] = kms_calls(organization=org, operation="Decrypt")
    assert refused.outcome == "integrity"


def test_a_wrapped_key_of_the_same_organization_but_another_region_is_refused(client, org, cmek, auth, linked):
    eu_key = kms_admin.create_key(region="eu-central-1", description="acme eu")
    link(org, eu_key, region="eu")
    eu = encrypt(client, auth, base="/api/eu/v0").json()
    leaks.plant(eu["plaintext_data_key"])
    assert decrypt(client, auth, eu["encrypted_data_key"], base="/api/eu/v0").status_code == 201
    assert decrypt(client, auth, eu["encrypted_data_key"]).status_code == 400


@pytest.mark.parametrize("who", ["org_admin_pat", "role_holder_pat", "system_account_without_role"])
def test_only_system_accounts_with_the_role(client, spec, org, linked, who, kms_calls):
    if who == "system_account_without_role":
        auth = system_account_token(org, role=False)
    else:
        user = factories.make_role_user(org, "org_admin")
        if who == "role_holder_pat":
            factories.grant(user, org, Role.ENVELOPE_MATERIALS)
        _token, text = tokens.personal_access_token_create(user=user, organization=org, name="api")
        auth = {"Authorization": f"Bearer {text}"}
    for response in (encrypt(client, auth), decrypt(client, auth, base64.b64encode(b"x" * 64).decode())):
        assert response.status_code == 403
        spec.validate(response, ENCRYPTION, "post", schema="ForbiddenError")
        assert_no_store(response)
    assert not kms_calls().exists()


def test_unauthenticated_is_401(client):
    response = client.post("/api/us/v0" + ENCRYPTION)
    assert response.status_code == 401 and response["Content-Type"] == "application/problem+json"
    assert_no_store(response)


def test_rate_limit_per_organization(client, spec, settings, org, other_org, auth, kms_calls):
    settings.ENVELOPE_MATERIALS_RATE_LIMIT = 3
    settings.ENVELOPE_MATERIALS_RATE_WINDOW_SECONDS = 3600  # one window for the whole test, however slow
    for _ in range(3):
        response = encrypt(client, auth)
        assert response.status_code == 201
        leaks.plant(response.json()["plaintext_data_key"])
    limited = decrypt(client, auth, base64.b64encode(b"x" * 64).decode())
    assert limited.status_code == 429
    assert limited["Content-Type"] == "application/problem+json" and limited.json()["status"] == 429
    assert 1 <= int(limited["Retry-After"]) <= 3600
    assert_no_store(limited)
    assert encrypt(client, auth).status_code == 429
    assert kms_calls(organization=org).count() == 3, "a refused call reaches no KMS"
    other_key = kms_admin.create_key(region="us-west-2", description="globex key")
    link(other_org, other_key)
    elsewhere = encrypt(client, system_account_token(other_org))
    assert elsewhere.status_code == 201, "another organization has its own budget"
    leaks.plant(elsewhere.json()["plaintext_data_key"])


def test_without_a_linked_cmek_or_with_another_cmek_id_is_400(client, spec, org, linked):
    auth = system_account_token(org)
    other = encrypt(client, auth, **{"X-Konnect-CMEK-Id": "mine"})
    body = spec.validate(other, ENCRYPTION, "post")
    assert other.status_code == 400 and body["invalid_parameters"][0]["field"] == "X-Konnect-CMEK-Id"
    linked.delete()
    response = encrypt(client, auth)
    body = spec.validate(response, ENCRYPTION, "post")
    assert response.status_code == 400 and "No CMEK is linked" in body["detail"]


@pytest.mark.parametrize("wrapped", ["not base64!", "", base64.b64encode(b"x" * 6145).decode(),
                                     base64.b64encode(b"garbage ciphertext" * 4).decode()])
def test_malformed_wrapped_keys_are_400(client, spec, auth, linked, wrapped):
    response = decrypt(client, auth, wrapped)
    assert response.status_code == 400, response.content
    body = spec.validate(response, DECRYPTION, "post")
    assert body["invalid_parameters"][0]["field"] == "encrypted_data_key"
    assert_no_store(response)
    linked.refresh_from_db()
    assert linked.status == "healthy", "a caller's forged ciphertext says nothing about the key's health"


def test_a_disabled_key_is_a_problem_not_a_500(client, auth, linked):
    kms_admin.disable_key(linked.key_ref)
    response = encrypt(client, auth)
    assert response.status_code == 409 and response.json()["code"] == "key_disabled"
    assert_no_store(response)
