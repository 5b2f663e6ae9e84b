"""Konnect's blob API: PUT/GET /api/{region}/v0/blobs/{blobId}, encrypted at rest, with a TTL."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from debugger.models import Blob
from encryption_keys import keyring, local_kms
from encryption_keys.models import EncryptionKey
from konnect_admin import tokens
from tests import factories

pytestmark = pytest.mark.django_db
BLOB = "/api/us/v0/blobs/680ed2c45c18562ab4448d54c6f962ff:reqres"
DATA = b'{"request": {"body": "blob-secret-31c1"}}'


def put(client, data=DATA, url=BLOB, **headers):
    return client.put(url, data, content_type="application/json", **headers)


@pytest.fixture
def pat_client(org, org_admin):
    _token, text = tokens.personal_access_token_create(user=org_admin, organization=org, name="ci")
    return Client(HTTP_AUTHORIZATION=f"Bearer {text}")


def test_a_data_plane_stores_and_reads_back_a_blob(dp_client, control_plane):
    response = put(dp_client, HTTP_X_KONNECT_EXPIRES_IN="600")
    assert response.status_code == 202
    blob = Blob.objects.get()
    assert (blob.control_plane, blob.region, blob.size) == (control_plane, "us", len(DATA))
    assert timedelta(seconds=590) < blob.expires_at - timezone.now() <= timedelta(seconds=600)
    assert b"blob-secret-31c1" not in bytes(blob.data.envelope)
    answer = dp_client.get(BLOB)
    assert answer.status_code == 200
    assert answer.content == DATA and answer["Content-Type"] == "application/json"
    assert answer["Cache-Control"] == "no-store"


def test_default_ttl_is_three_days_and_longer_is_refused(dp_client):
    assert put(dp_client).status_code == 202
    assert Blob.objects.get().expires_at - timezone.now() > timedelta(days=3) - timedelta(minutes=1)
    for ttl in ("0", str(3 * 86400 + 1), "soon"):
        response = put(dp_client, HTTP_X_KONNECT_EXPIRES_IN=ttl)
        assert response.status_code == 400, ttl
        assert response["Content-Type"] == "application/problem+json"


def test_only_the_default_cmek_id_is_accepted(dp_client):
    assert put(dp_client, HTTP_X_KONNECT_CMEK_ID="default").status_code == 202
    assert put(dp_client, HTTP_X_KONNECT_CMEK_ID="other").status_code == 400


def test_a_person_reads_blobs_of_control_planes_they_may_debug(dp_client, pat_client, org, control_plane):
    put(dp_client)
    assert pat_client.get(BLOB).content == DATA
    viewer_elsewhere = factories.make_role_user(org, "cp_viewer", factories.make_control_plane(org, name="other"))
    _token, text = tokens.personal_access_token_create(user=viewer_elsewhere, organization=org, name="x")
    assert Client(HTTP_AUTHORIZATION=f"Bearer {text}").get(BLOB).status_code == 404


def test_blobs_are_invisible_across_organizations_and_control_planes(dp_client, org, org_admin, other_org,
                                                                      other_org_admin, other_control_plane):
    put(dp_client)
    _token, other_pat = tokens.personal_access_token_create(user=other_org_admin, organization=other_org, name="x")
    assert Client(HTTP_AUTHORIZATION=f"Bearer {other_pat}").get(BLOB).status_code == 404
    _dp, other_dp = tokens.data_plane_token_create(actor=other_org_admin, control_plane=other_control_plane,
                                                   name="x")
    assert Client(HTTP_AUTHORIZATION=f"Bearer {other_dp}").get(BLOB).status_code == 404
    sibling = factories.make_control_plane(org, name="sibling")
    _dp, sibling_dp = tokens.data_plane_token_create(actor=org_admin, control_plane=sibling, name="x")
    sibling_client = Client(HTTP_AUTHORIZATION=f"Bearer {sibling_dp}")
    assert sibling_client.get(BLOB).status_code == 404
    assert put(sibling_client, b"overwrite").status_code == 403
    assert dp_client.get(BLOB).content == DATA


def test_an_expired_blob_is_gone(dp_client):
    put(dp_client)
    Blob.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert dp_client.get(BLOB).status_code == 404


def test_put_replaces_a_blob(dp_client):
    put(dp_client)
    put(dp_client, b"second")
    assert Blob.objects.count() == 1
    assert dp_client.get(BLOB).content == b"second"


def test_limits_and_ids(dp_client, client):
    assert put(client).status_code == 401
    assert dp_client.put(BLOB, b"x", content_type="text/plain", CONTENT_LENGTH=str(2 * 1024 * 1024)).status_code == 413
    assert put(dp_client, url="/api/us/v0/blobs/%20bad%20id").status_code == 400
    assert dp_client.get("/api/us/v0/blobs/unknown").status_code == 404


def test_a_blob_under_a_disabled_key_answers_a_typed_problem(dp_client, org, cmek):
    EncryptionKey.objects.create(organization=org, region="us", name="k", key_arn=cmek)
    put(dp_client)
    local_kms.disable_key(cmek)
    keyring.reset_for_tests()
    try:
        response = dp_client.get(BLOB)
    finally:
        local_kms.enable_key(cmek)
    assert response.status_code == 409
    assert response.json()["code"] == "key_disabled"
    assert b"blob-secret" not in response.content
