"""Config stores without a name (Kong's spec makes `name` optional; Terraform sends `{"name": null}`): created with
a generated name `config-store-<first 8 hex digits of the id>`; an update with a null or missing name keeps it."""

import json

import pytest

from konnect_admin import tokens
from konnect_admin.models import AuditEvent
from vault.models import ConfigStore

pytestmark = pytest.mark.django_db


@pytest.fixture
def headers(org, org_admin):
    _token, text = tokens.personal_access_token_create(user=org_admin, organization=org, name="api")
    return {"Authorization": f"Bearer {text}"}


def stores_url(control_plane):
    return f"/api/us/v2/control-planes/{control_plane.pk}/config-stores"


@pytest.mark.parametrize("body", [{}, {"name": None}])
def test_create_without_a_name_generates_one(client, headers, control_plane, org_admin, body):
    response = client.post(stores_url(control_plane), json.dumps(body), content_type="application/json",
                           headers=headers)
    assert response.status_code == 201, response.content
    created = response.json()
    store = ConfigStore.objects.get(pk=created["id"])
    assert created["name"] == store.name == f"config-store-{store.pk.hex[:8]}"
    event = AuditEvent.objects.get(action="vault.config_store.created", actor=org_admin)
    assert event.details["name"] == store.name


def test_generated_names_differ_between_stores(client, headers, control_plane):
    names = {client.post(stores_url(control_plane), "{}", content_type="application/json",
                         headers=headers).json()["name"] for _ in range(3)}
    assert len(names) == 3


@pytest.mark.parametrize("body", [{}, {"name": None}])
def test_update_with_null_or_no_name_keeps_the_name(client, headers, control_plane, body):
    created = client.post(stores_url(control_plane), json.dumps({"name": "payments"}),
                          content_type="application/json", headers=headers).json()
    url = f"{stores_url(control_plane)}/{created['id']}"
    response = client.put(url, json.dumps(body), content_type="application/json", headers=headers)
    assert response.status_code == 200 and response.json()["name"] == "payments"
    assert ConfigStore.objects.get(pk=created["id"]).name == "payments"


def test_patch_is_not_an_operation_of_kongs_spec(client, headers, control_plane):
    created = client.post(stores_url(control_plane), "{}", content_type="application/json", headers=headers).json()
    response = client.patch(f"{stores_url(control_plane)}/{created['id']}", json.dumps({"name": None}),
                            content_type="application/json", headers=headers)
    assert response.status_code == 405 and response["Content-Type"] == "application/problem+json"
    assert ConfigStore.objects.get(pk=created["id"]).name == created["name"]


def test_an_empty_name_is_still_refused(client, headers, control_plane):
    response = client.post(stores_url(control_plane), json.dumps({"name": ""}), content_type="application/json",
                           headers=headers)
    assert response.status_code == 400
    assert response.json()["invalid_parameters"][0]["rule"] == "min_length"
    assert not ConfigStore.objects.exists()
