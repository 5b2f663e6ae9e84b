"""The ways into a key replacement: the key page's Replace form and PUT /cmeks/default with a new ARN."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from encryption_keys.lifecycle.models import RewrapJob, RewrapState
from encryption_keys.models import DataKey, EncryptionKey
from konnect_admin import tokens
from tests.testapp.models import SealedNote

pytestmark = pytest.mark.django_db


@pytest.fixture
def notes(org, linked_key):
    for scope in range(3):
        SealedNote.objects.create(organization=org, scope_ref=f"s{scope}", text="kept")


def test_replace_form_runs_the_replacement(org, org_admin, linked_key, new_cmek, notes, login):
    response = login(org_admin).post(reverse("encryption_key_replace", args=[linked_key.pk]),
                                     {"name": "second", "key_ref": new_cmek, "description": ""})
    assert response.status_code == 302
    job = RewrapJob.objects.get()
    assert (job.state, job.done, job.actor) == (RewrapState.COMPLETED, 3, org_admin)
    assert set(DataKey.objects.values_list("wrapping_key_ref", flat=True)) == {new_cmek}


def test_put_cmek_with_a_new_arn_replaces_the_key(org, org_admin, linked_key, new_cmek, notes):
    _token, text = tokens.personal_access_token_create(user=org_admin, organization=org, name="terraform")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {text}")
    response = api.put("/api/us/v0/cmeks/default", json.dumps({"key_arn": new_cmek, "name": "rotated"}),
                       content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["key_arn"] == new_cmek
    job = RewrapJob.objects.get()
    assert (job.state, job.old_key_ref, job.new_key_ref) == (RewrapState.COMPLETED, linked_key.key_ref, new_cmek)
    assert EncryptionKey.objects.get().name == "rotated"
    assert set(DataKey.objects.values_list("wrapping_key_ref", flat=True)) == {new_cmek}


def test_put_cmek_while_a_replacement_runs_is_409(org, org_admin, linked_key, new_cmek, notes):
    from devtools import local_kms
    from encryption_keys.lifecycle import replace_key

    replace_key(organization=org, region="us", new_key_ref=new_cmek, actor=org_admin, start=False)
    _token, text = tokens.personal_access_token_create(user=org_admin, organization=org, name="terraform")
    third = local_kms.create_key(region="us-west-2", multi_region=True)
    response = Client(HTTP_AUTHORIZATION=f"Bearer {text}").put(
        "/api/us/v0/cmeks/default", json.dumps({"key_arn": third, "name": "x"}), content_type="application/json")
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "replacement_in_progress"


def test_replacing_with_a_key_that_warns_asks_replace_anyway_first(org, org_admin, linked_key, notes, login):
    """A single-region new key passes every check but warns: nothing is replaced until the admin confirms it."""
    import re

    from devtools import local_kms

    single = local_kms.create_key(region="us-west-2", description="single-region replacement")
    client = login(org_admin)
    url = reverse("encryption_key_replace", args=[linked_key.pk])
    response = client.post(url, {"name": "second", "key_ref": single, "description": ""})
    body = response.content.decode()
    assert response.status_code == 200 and "Replace anyway?" in body and 'data-verdict="warn"' in body
    assert not RewrapJob.objects.exists() and EncryptionKey.objects.get().key_ref == linked_key.key_ref
    token = re.search(r'name="confirmed" value="([^"]+)"', body).group(1)

    changed = local_kms.create_key(region="us-west-2", description="another single-region key")
    response = client.post(url, {"name": "second", "key_ref": changed, "description": "", "confirmed": token})
    assert response.status_code == 200 and "Replace anyway?" in response.content.decode()
    assert not RewrapJob.objects.exists()

    response = client.post(url, {"name": "second", "key_ref": single, "description": "", "confirmed": token})
    assert response.status_code == 302
    assert RewrapJob.objects.get().new_key_ref == single and EncryptionKey.objects.get().key_ref == single
