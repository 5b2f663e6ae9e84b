"""Data-plane resolution of `{vault://prefix/key}`: own control plane only, batch decryption, typed errors,
and a record of every resolution (never the value)."""

import copy

import pytest
from django.db import connection
from django.urls import reverse
from jsonschema import Draft202012Validator

from devtools import local_kms
from encryption_keys import keyring
from konnect_admin import services as platform
from konnect_admin import tokens
from tests import factories
from tests.vault.conftest import make_secrets
from vault import services
from vault.models import Secret, SecretResolution

pytestmark = pytest.mark.django_db


@pytest.fixture
def resolve_schema(client):
    """Our own published contract for the resolve operation (the v1 OpenAPI document), dereferenced."""
    document = client.get("/api/us/v1/openapi.json").json()
    operation = document["paths"]["/vault/resolve"]["post"]

    def deref(node):
        if isinstance(node, list):
            return [deref(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return deref(document["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]])
        return {key: deref(value) for key, value in node.items()}

    return {status: next(iter(deref(response["content"]).values()))["schema"]  # application/json or problem+json
            for status, response in operation["responses"].items() if "content" in response} | {
        "description": operation["description"]}


def conforms(schema, response):
    body = response.json()
    assert not list(Draft202012Validator(copy.deepcopy(schema)).iter_errors(body))
    return body


@pytest.fixture
def payments(org_admin, control_plane):
    store = services.config_store_create(actor=org_admin, control_plane=control_plane, name="payments")
    make_secrets(store, org_admin, stripe="sk_live_1", db="pg-pass")
    services.vault_create(actor=org_admin, control_plane=control_plane, prefix="pay", config_store=store)
    return store


def test_resolves_references_of_its_control_plane(data_plane, control_plane, payments, resolve_schema):
    dp = data_plane(control_plane)
    response = dp.post("/vault/resolve", {"references": [
        "{vault://pay/stripe}", "{vault://pay/db}", "{vault://pay/stripe}", "{vault://pay/missing}",
        "{vault://nope/stripe}", "vault://pay/stripe", "{vault://Bad_Prefix/x}"]})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    results = conforms(resolve_schema["200"], response)["results"]
    assert results[:3] == [{"reference": "{vault://pay/stripe}", "value": "sk_live_1"},
                           {"reference": "{vault://pay/db}", "value": "pg-pass"},
                           {"reference": "{vault://pay/stripe}", "value": "sk_live_1"}]
    assert [r["error"]["code"] for r in results[3:]] == ["secret_not_found", "vault_not_found", "invalid_reference",
                                                        "invalid_reference"]
    assert all(set(r["error"]) == {"code", "title", "detail", "retryable"} for r in results[3:])
    logged = list(SecretResolution.objects.order_by("id").values_list("reference", "outcome", "token_id"))
    assert [outcome for _ref, outcome, _token in logged] == ["ok", "ok", "ok", "secret_not_found", "vault_not_found",
                                                            "invalid_reference", "invalid_reference"]
    assert {token for *_rest, token in logged} == {control_plane.data_plane_tokens.get().pk}
    assert "sk_live_1" not in str(list(SecretResolution.objects.values()))


def test_one_kms_decrypt_per_data_key_for_a_batch(data_plane, org_admin, control_plane, payments, kms_calls):
    other = services.config_store_create(actor=org_admin, control_plane=control_plane, name="other")
    make_secrets(other, org_admin, **{f"k{i}": f"v{i}" for i in range(5)})
    services.vault_create(actor=org_admin, control_plane=control_plane, prefix="other", config_store=other)
    keyring.reset_for_tests()
    before = kms_calls(operation="Decrypt").count()
    references = ["{vault://pay/stripe}", "{vault://pay/db}", *[f"{{vault://other/k{i}}}" for i in range(5)]]
    results = data_plane(control_plane).post("/vault/resolve", {"references": references}).json()["results"]
    assert [r["value"] for r in results] == ["sk_live_1", "pg-pass", *[f"v{i}" for i in range(5)]]
    assert kms_calls(operation="Decrypt").count() - before == 2


def test_another_control_planes_secrets_are_never_resolved(data_plane, org, org_admin, other_org, payments,
                                                           control_plane):
    # Same prefix and key on a sibling control plane and in another organization: each resolves only its own.
    sibling = factories.make_control_plane(org, name="sibling")
    store = services.config_store_create(actor=org_admin, control_plane=sibling, name="s")
    make_secrets(store, org_admin, stripe="sibling-value")
    stranger_admin = factories.make_role_user(other_org, "org_admin")
    foreign = factories.make_control_plane(other_org, name="foreign")
    foreign_store = services.config_store_create(actor=stranger_admin, control_plane=foreign, name="f")
    make_secrets(foreign_store, stranger_admin, only_here="foreign-value")
    services.vault_create(actor=stranger_admin, control_plane=foreign, prefix="theirs", config_store=foreign_store)

    assert data_plane(sibling).post("/vault/resolve", {"references": ["{vault://pay/stripe}"]}).json()[
        "results"][0]["error"]["code"] == "vault_not_found"
    mine = data_plane(control_plane).post("/vault/resolve", {"references": ["{vault://theirs/only_here}"]})
    assert mine.json()["results"][0]["error"]["code"] == "vault_not_found"
    assert data_plane(control_plane).post("/vault/resolve", {"references": ["{vault://pay/stripe}"]}).json()[
        "results"][0]["value"] == "sk_live_1"
    assert not SecretResolution.objects.filter(control_plane=foreign).exists()


def test_resolution_needs_a_live_data_plane_token(client, org_admin, control_plane, payments):
    url = "/api/us/v1/vault/resolve"
    body = {"references": ["{vault://pay/stripe}"]}
    assert client.post(url, body, content_type="application/json").status_code == 401
    _pat, pat = tokens.personal_access_token_create(user=org_admin, organization=control_plane.organization, name="p")
    assert client.post(url, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {pat}").status_code == 401
    token, text = tokens.data_plane_token_create(actor=org_admin, control_plane=control_plane, name="dp")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {text}"}
    assert client.post(url, body, content_type="application/json", **auth).status_code == 200
    assert client.post("/api/eu/v1/vault/resolve", body, content_type="application/json", **auth).status_code == 404
    tokens.data_plane_token_revoke(actor=org_admin, token=token)
    response = client.post(url, body, content_type="application/json", **auth)
    assert response.status_code == 401 and response["Content-Type"] == "application/problem+json"
    assert b"sk_live_1" not in response.content


@pytest.mark.parametrize("body", [{"references": []}, {"references": ["{vault://pay/stripe}"] * 101},
                                  {"references": ["{vault://pay/" + "k" * 1100 + "}"]}, {"references": "x"}, {}])
def test_bounded_and_validated_requests(data_plane, control_plane, payments, body):
    response = data_plane(control_plane).post("/vault/resolve", body)
    assert response.status_code == 400
    assert response.json()["invalid_parameters"]
    assert not SecretResolution.objects.exists()


def test_key_disabled_gives_typed_errors_and_the_status_column_shows_it(data_plane, login, org, org_admin,
                                                                          link_cmek, cmek, resolve_schema):
    link_cmek(org)
    control_plane = platform.control_plane_create(organization=org, actor=org_admin, name="cmek-cp", region="us")
    store = services.config_store_create(actor=org_admin, control_plane=control_plane, name="s")
    [secret] = make_secrets(store, org_admin, api_key="the-value")
    services.vault_create(actor=org_admin, control_plane=control_plane, prefix="vk", config_store=store)
    dp = data_plane(control_plane)
    status_url = reverse("vault_secret_status", args=[control_plane.pk, store.pk, secret.pk])
    browser = login(org_admin)

    local_kms.disable_key(cmek)
    keyring.reset_for_tests()  # a process that has no cached data key: the revocation bound has passed
    every = dp.post("/vault/resolve", {"references": ["{vault://vk/api_key}"]})
    assert every.status_code == 409
    assert every["Content-Type"] == "application/problem+json"
    assert every.json()["code"] == "key_disabled" and b"the-value" not in every.content
    mixed = dp.post("/vault/resolve", {"references": ["{vault://vk/api_key}", "{vault://vk/missing}"]})
    assert mixed.status_code == 200
    first, second = conforms(resolve_schema["200"], mixed)["results"]
    assert first["error"]["code"] == "key_disabled" and first["error"]["retryable"] is False and "value" not in first
    assert second["error"]["code"] == "secret_not_found"
    badge = browser.get(status_url, headers={"HX-Request": "true"})
    assert badge.status_code == 200
    assert b'data-code="key_disabled"' in badge.content and b"readable" not in badge.content
    assert b"<html" not in badge.content  # only the fragment
    page = browser.get(status_url)
    assert b"<html" in page.content and b"key_disabled" in page.content

    local_kms.enable_key(cmek)
    keyring.reset_for_tests()
    again = dp.post("/vault/resolve", {"references": ["{vault://vk/api_key}"]})
    assert again.status_code == 200 and again.json()["results"][0]["value"] == "the-value"
    assert b"readable" in browser.get(status_url, headers={"HX-Request": "true"}).content
    assert list(SecretResolution.objects.filter(control_plane=control_plane).order_by("id")
                .values_list("outcome", flat=True)) == ["key_disabled", "key_disabled", "secret_not_found", "ok"]


def test_kms_unreachable_is_503_with_retry_after(data_plane, control_plane, payments, local_kms):
    dp = data_plane(control_plane)
    keyring.reset_for_tests()
    local_kms.stop()
    try:
        response = dp.post("/vault/resolve", {"references": ["{vault://pay/stripe}"]})
    finally:
        local_kms.start()
    assert response.status_code == 503 and response["Retry-After"]
    assert response.json()["code"] == "kms_unavailable"
    assert SecretResolution.objects.get().outcome == "kms_unavailable"


def test_a_vault_whose_store_was_deleted(data_plane, org_admin, control_plane, payments):
    services.config_store_delete(actor=org_admin, store=payments, force=True)
    result = data_plane(control_plane).post("/vault/resolve", {"references": ["{vault://pay/stripe}"]})
    assert result.json()["results"][0]["error"]["code"] == "config_store_not_found"


def test_the_contract_documents_the_choice(resolve_schema):
    assert "every reference fails because of the key" in resolve_schema["description"]
    assert {"200", "409", "503"} <= set(resolve_schema)


DENY_ALL = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}]}


def _tamper(secret):
    tampered = bytearray(bytes(Secret.objects.get(pk=secret.pk).value.envelope))
    tampered[-1] ^= 0x01
    with connection.cursor() as cursor:
        cursor.execute("UPDATE vault_secret SET value = %s WHERE id = %s",
                       [bytes(tampered), secret.pk.hex if connection.vendor == "sqlite" else secret.pk])


BREAKS = {
    "key_disabled": lambda secret, arn: local_kms.disable_key(arn),
    "key_pending_deletion": lambda secret, arn: local_kms.schedule_key_deletion(arn),
    "key_access_denied": lambda secret, arn: local_kms.put_key_policy(arn, DENY_ALL),
    "key_not_found": lambda secret, arn: local_kms.delete_key_material_or_key(arn),
    "integrity": lambda secret, arn: _tamper(secret),
}


@pytest.mark.parametrize("code", list(BREAKS))
def test_every_permanent_code_is_409_without_retry_after(data_plane, org, org_admin, link_cmek, cmek, code):
    link_cmek(org)
    control_plane = platform.control_plane_create(organization=org, actor=org_admin, name="cmek-cp", region="us")
    store = services.config_store_create(actor=org_admin, control_plane=control_plane, name="s")
    [secret] = make_secrets(store, org_admin, api_key="the-value")
    services.vault_create(actor=org_admin, control_plane=control_plane, prefix="vk", config_store=store)
    BREAKS[code](secret, cmek)
    keyring.reset_for_tests()
    response = data_plane(control_plane).post("/vault/resolve", {"references": ["{vault://vk/api_key}"]})
    assert response.status_code == 409 and "Retry-After" not in response
    assert (response.json()["code"], response.json()["retryable"]) == (code, False)
    assert b"the-value" not in response.content
