"""Konnect's blob API: PUT/GET /api/{region}/v0/blobs/{blobId}, encrypted at rest, with a TTL."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from debugger.models import Blob
from devtools import local_kms
from encryption_keys import keyring
from encryption_keys.models import EncryptionKey
from konnect_admin import tokens
from tests import factories

pytestmark = pytest.mark.django_db
BLOB = "/api/us/v0/blobs/680ed2c45c18562ab4448d54c6f962ff:reqres"
DATA = b'{"request": {"body": "blob-secret-31c1"}}'


def put(client, data=DATA, url=BLOB, content_type="application/json", **headers):
    return client.put(url, data, content_type=content_type, **headers)


@pytest.fixture
def pat_client(org, org_admin):
    _token, text = tokens.personal_access_token_create(user=org_admin, organization=org, name="ci")
    return Client(HTTP_AUTHORIZATION=f"Bearer {text}")


def test_a_data_plane_stores_and_reads_back_a_blob(dp_client, control_plane):
    sent = timezone.now()
    response = put(dp_client, HTTP_X_KONNECT_EXPIRES_IN="600")
    answered = timezone.now()
    assert response.status_code == 202
    blob = Blob.objects.get()
    assert (blob.control_plane, blob.region, blob.size) == (control_plane, "us", len(DATA))
    assert sent + timedelta(seconds=600) <= blob.expires_at <= answered + timedelta(seconds=600)
    assert b"blob-secret-31c1" not in bytes(blob.data.envelope)
    answer = dp_client.get(BLOB)
    assert answer.status_code == 200
    assert answer.content == DATA and answer["Content-Type"] == "application/octet-stream"
    assert answer["X-Konnect-Blob-Content-Type"] == "application/json"
    assert "no-store" in answer["Cache-Control"]


def test_default_ttl_is_three_days_and_longer_is_refused(dp_client):
    sent = timezone.now()
    assert put(dp_client).status_code == 202
    assert sent + timedelta(days=3) <= Blob.objects.get().expires_at <= timezone.now() + timedelta(days=3)
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
    assert put(sibling_client, b"overwrite").status_code == 404  # a 403 would say the id exists elsewhere
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
    EncryptionKey.objects.create(organization=org, region="us", name="k", key_ref=cmek)
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


# --- least privilege and safe serving (issue 12, points 4 and 7) -------------------------------------------


def pat_of(user, org):
    _token, text = tokens.personal_access_token_create(user=user, organization=org, name="blob reader")
    return Client(HTTP_AUTHORIZATION=f"Bearer {text}")


def test_a_stored_html_or_svg_blob_is_served_as_an_opaque_download(dp_client):
    """The attack: a blob PUT as text/html or image/svg+xml came back rendering in the reader's browser."""
    for declared in ("text/html", "image/svg+xml"):
        put(dp_client, b"<svg onload=alert(1)><script>alert(1)</script>", content_type=declared)
        answer = dp_client.get(BLOB)
        assert answer.status_code == 200
        assert answer["Content-Type"] == "application/octet-stream"
        assert answer["Content-Disposition"] == "attachment"
        assert answer["X-Content-Type-Options"] == "nosniff"
        assert answer["X-Konnect-Blob-Content-Type"] == declared  # metadata only
        assert "no-store" in answer["Cache-Control"]


def test_a_declared_type_that_is_not_a_media_type_is_not_echoed(dp_client):
    put(dp_client, content_type='text/html; x="<script>"')
    answer = dp_client.get(BLOB)
    assert answer.status_code == 200 and "X-Konnect-Blob-Content-Type" not in answer


DP_BLOB_READERS = {"org_admin": True, "cp_admin": True, "debug_session_creator": True, "cp_viewer": False,
                   "vault_admin": False, "org_admin_read_only": False, "cp_creator": False}


@pytest.mark.parametrize("role", sorted(DP_BLOB_READERS))
def test_a_data_plane_blob_is_read_by_its_control_planes_plaintext_roles_only(dp_client, org, control_plane, role):
    put(dp_client)
    user = factories.make_role_user(org, role, None if role.startswith("org_admin") else control_plane)
    answer = pat_of(user, org).get(BLOB)
    assert (answer.status_code, DATA in answer.content) == ((200, True) if DP_BLOB_READERS[role] else (404, False))


def test_a_persons_blob_is_read_by_the_organizations_plaintext_roles_only(org, org_admin, control_plane, dp_client):
    """A blob stored with a personal access token belongs to the organization: `*` plaintext roles read it."""
    assert put(pat_of(org_admin, org)).status_code == 202
    readers = {"org admin": org_admin, "* debug session creator": factories.make_role_user(org, "debug_session_creator")}
    for who, user in readers.items():
        assert pat_of(user, org).get(BLOB).content == DATA, who
    outsiders = {"one cp's debug session creator": factories.make_role_user(org, "debug_session_creator", control_plane),
                 "one cp's admin": factories.make_role_user(org, "cp_admin", control_plane),
                 "* viewer": factories.make_role_user(org, "cp_viewer"),
                 "read-only org admin": factories.make_role_user(org, "org_admin_read_only")}
    for who, user in outsiders.items():
        assert pat_of(user, org).get(BLOB).status_code == 404, who
    assert dp_client.get(BLOB).status_code == 404  # a data plane is not a person of the organization


def test_nobody_replaces_a_blob_they_cannot_read(org, org_admin, control_plane):
    assert put(pat_of(org_admin, org)).status_code == 202
    one_cp_creator = factories.make_role_user(org, "debug_session_creator", control_plane)
    assert put(pat_of(one_cp_creator, org), b"swapped").status_code == 403
    assert pat_of(org_admin, org).get(BLOB).content == DATA


@pytest.mark.parametrize("role", ["debug_session_creator", "cp_admin"])
def test_a_role_on_one_control_plane_cannot_store_an_organization_blob(org, control_plane, role):
    """A person's blob belongs to the organization and is read with plaintext rights on `*`: storing one needs them
    too, or one control plane's Debug Session Creator writes organization-wide data that they cannot read back."""
    one_cp = pat_of(factories.make_role_user(org, role, control_plane), org)
    answer = put(one_cp)
    assert answer.status_code == 403 and not Blob.objects.exists()
    assert answer["Content-Type"] == "application/problem+json"
    assert put(pat_of(factories.make_role_user(org, role), org)).status_code == 202  # the same role on `*`


def test_a_data_plane_learns_nothing_about_another_scopes_blob_id(dp_client, org, org_admin):
    """PUT to an id that exists in a scope the caller cannot read answers exactly like GET: 404, content kept."""
    assert put(pat_of(org_admin, org)).status_code == 202  # the organization's blob
    sibling = factories.make_control_plane(org, name="sibling")
    _dp, sibling_dp = tokens.data_plane_token_create(actor=org_admin, control_plane=sibling, name="x")
    sibling_client = Client(HTTP_AUTHORIZATION=f"Bearer {sibling_dp}")
    for client in (dp_client, sibling_client):
        answer, read = put(client, b"swapped"), client.get(BLOB)
        assert answer.status_code == read.status_code == 404
        assert {**answer.json(), "instance": ""} == {**read.json(), "instance": ""}  # only the trace id differs
    assert pat_of(org_admin, org).get(BLOB).content == DATA
