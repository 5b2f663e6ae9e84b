"""Config store keys are validated as Konnect's references need them: a key that `{vault://<prefix>/<key>}` cannot
carry unambiguously is refused on every way in (page, API body, API path), and a reference naming one never resolves."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.vault.conftest import make_secrets
from vault import services
from vault.models import Secret
from vault.references import InvalidReference, parse_reference

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
BAD_KEYS = ["Bad Key!", "spaced key", "a?b", "a#b", "a%20b", "/leading", "trailing/", "a//b", "ключ", "a\nb"]
GOOD_KEYS = ["stripe", "Stripe_API-key.v2", "db/primary/password", "k" * 512]


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_keys_konnect_accepts_are_stored_and_referenced(org_admin, store, key):
    [secret] = make_secrets(store, org_admin, **{key: "v"})
    assert Secret.objects.get(pk=secret.pk).key == key
    assert parse_reference(f"{{vault://payments-vault/{key}}}").key == key


@pytest.mark.parametrize("key", BAD_KEYS)
def test_the_service_refuses_bad_keys(org_admin, store, key):
    with pytest.raises(ValidationError) as refused:
        services.secret_create(actor=org_admin, store=store, key=key, value="v")
    assert "key" in refused.value.message_dict
    assert not Secret.objects.exists()


def test_the_page_shows_a_form_error(login, vault_admin, store):
    client = login(vault_admin)
    url = reverse("vault_secret_create", args=[store.control_plane.pk, store.pk])
    fragment = client.post(url, {"key": "Bad Key!", "value": "v"}, headers=HTMX)
    assert fragment.status_code == 422 and b"<html" not in fragment.content
    assert b"Use letters, digits" in fragment.content and b'aria-invalid="true"' in fragment.content
    full = client.post(url, {"key": "Bad Key!", "value": "v"})
    assert full.status_code == 400 and b"Use letters, digits" in full.content
    assert not Secret.objects.exists()


def test_the_api_answers_problem_json_400(api, org_admin, spec, store):
    admin_api = api(org_admin)
    url = f"/control-planes/{store.control_plane.pk}/config-stores/{store.pk}/secrets"
    response = admin_api.post(url, {"key": "Bad Key!", "value": "v"})
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    problem = spec.assert_conforms(response, "create-config-store-secret")
    assert [(p["field"], p["rule"]) for p in problem["invalid_parameters"]] == [("key", "invalid")]
    put = admin_api.put(f"{url}/Bad%20Key!", {"value": "v"})
    assert put.status_code == 400
    assert spec.assert_conforms(put, "update-config-store-secret")["invalid_parameters"][0]["field"] == "key"
    assert not Secret.objects.exists()


@pytest.mark.parametrize("key", BAD_KEYS)
def test_a_reference_with_a_bad_key_is_invalid(key):
    with pytest.raises(InvalidReference):
        parse_reference(f"{{vault://payments-vault/{key}}}")


def test_a_stored_bad_key_from_before_the_rule_never_resolves(data_plane, org_admin, control_plane, store):
    """A secret written before keys were validated (inserted past the validators here) is not resolvable."""
    make_secrets(store, org_admin, good="fine")
    legacy = Secret(store=store, key="Bad Key!")
    legacy.value = "legacy value"
    legacy.save(force_insert=True)
    services.vault_create(actor=org_admin, control_plane=control_plane, prefix="payments-vault", config_store=store)
    response = data_plane(control_plane).post("/vault/resolve", {"references": [
        "{vault://payments-vault/Bad Key!}", "{vault://payments-vault/good}"]})
    results = response.json()["results"]
    assert results[0]["error"]["code"] == "invalid_reference" and "legacy value" not in response.content.decode()
    assert results[1] == {"reference": "{vault://payments-vault/good}", "value": "fine"}
