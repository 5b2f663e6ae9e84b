"""The Config Store API against Konnect's spec: every response body schema-validated, success and errors."""

import pytest

from encryption_keys.models import DataKey
from konnect_admin.models import AuditEvent
from tests import factories
from tests.vault.conftest import make_secrets
from vault.models import ConfigStore, Secret

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_api(api, org_admin):
    return api(org_admin)


def stores_url(control_plane):
    return f"/control-planes/{control_plane.pk}/config-stores"


def test_config_store_lifecycle_conforms(admin_api, spec, control_plane):
    created = spec.assert_conforms(admin_api.post(stores_url(control_plane), {"name": "Config Store"}),
                                   "create-config-store")
    assert admin_api.responses[-1].status_code == 201
    assert created["name"] == "Config Store"
    store = ConfigStore.objects.get(pk=created["id"])
    assert store.control_plane == control_plane
    url = f"{stores_url(control_plane)}/{store.pk}"

    fetched = spec.assert_conforms(admin_api.get(url), "get-config-store")
    assert fetched == created
    renamed = spec.assert_conforms(admin_api.put(url, {"name": "Renamed"}), "update-config-store")
    assert renamed["name"] == "Renamed" and renamed["id"] == created["id"]
    assert ConfigStore.objects.get(pk=store.pk).name == "Renamed"
    listing = spec.assert_conforms(admin_api.get(stores_url(control_plane)), "list-config-stores")
    assert [item["id"] for item in listing["data"]] == [created["id"]]
    assert listing["meta"]["page"] == {"size": 100, "next": None, "previous": None}

    deleted = admin_api.delete(url)
    assert deleted.status_code == 204
    spec.assert_conforms(deleted, "delete-config-store")
    assert not ConfigStore.objects.filter(pk=store.pk).exists()
    assert spec.assert_conforms(admin_api.get(url), "get-config-store")["status"] == 404
    actions = set(AuditEvent.objects.filter(action__startswith="vault.config_store").values_list("action", flat=True))
    assert actions == {"vault.config_store.created", "vault.config_store.renamed", "vault.config_store.deleted"}


@pytest.mark.parametrize(("body", "field", "rule"), [
    ({"name": ""}, "name", "min_length"),
    ({"name": "x" * 101}, "name", "max_length"),
    ({"name": 5}, "name", "is_string"),
    ({"name": "ok", "extra": 1}, "extra", "unknown_property"),
    ({"name": "tab\there"}, "name", "invalid"),
])
def test_invalid_config_store_bodies_are_400_with_invalid_parameters(admin_api, spec, control_plane, body, field, rule):
    body = spec.assert_conforms(admin_api.post(stores_url(control_plane), body), "create-config-store")
    assert body["status"] == 400
    assert {(p["field"], p["rule"]) for p in body["invalid_parameters"]} >= {(field, rule)}
    assert not ConfigStore.objects.exists()


def test_update_with_invalid_name_is_400(admin_api, spec, store):
    url = f"{stores_url(store.control_plane)}/{store.pk}"
    body = spec.assert_conforms(admin_api.put(url, {"name": "x" * 101}), "update-config-store")
    assert body["invalid_parameters"][0]["maximum"] == 100
    assert ConfigStore.objects.get(pk=store.pk).name == "payments-secrets"


def test_non_json_bodies_are_415(admin_api, spec, store):
    base = f"{stores_url(store.control_plane)}/{store.pk}"
    for method, path, operation in [
        ("post", stores_url(store.control_plane), "create-config-store"),
        ("put", base, "update-config-store"),
        ("post", f"{base}/secrets", "create-config-store-secret"),
        ("put", f"{base}/secrets/k", "update-config-store-secret"),
    ]:
        response = admin_api.call(method, path, "key=k&value=v", content_type="application/x-www-form-urlencoded")
        assert response.status_code == 415
        spec.assert_conforms(response, operation)
    assert not Secret.objects.exists()


def test_delete_refuses_a_store_with_secrets_unless_forced(admin_api, spec, store, org_admin):
    make_secrets(store, org_admin, one="1", two="2")
    data_key = DataKey.objects.get(scope_ref=store.scope_ref)
    url = f"{stores_url(store.control_plane)}/{store.pk}"
    refused = spec.assert_conforms(admin_api.delete(url), "delete-config-store")
    assert refused["status"] == 400
    [param] = refused["invalid_parameters"]
    assert param["field"] == "force" and param["source"] == "query" and "2 secrets" in param["reason"]
    refused = spec.assert_conforms(admin_api.delete(url + "?force=false"), "delete-config-store")
    assert refused["status"] == 400
    bad = spec.assert_conforms(admin_api.delete(url + "?force=yes"), "delete-config-store")
    assert bad["invalid_parameters"][0]["rule"] == "enum"
    assert Secret.objects.filter(store=store).count() == 2

    assert admin_api.delete(url + "?force=true").status_code == 204
    assert not ConfigStore.objects.filter(pk=store.pk).exists()
    assert not Secret.objects.exists()
    data_key.refresh_from_db()
    assert data_key.shredded_at is not None and data_key.wrapped is None  # crypto-shredded with its store


def test_secret_lifecycle_conforms(admin_api, spec, store):
    url = f"{stores_url(store.control_plane)}/{store.pk}/secrets"
    created = spec.assert_conforms(admin_api.post(url, {"key": "stripe", "value": "sk_live_1"}),
                                   "create-config-store-secret")
    assert admin_api.responses[-1].status_code == 201
    assert set(created) == {"key", "created_at", "updated_at"} and created["key"] == "stripe"
    secret = Secret.objects.get(store=store, key="stripe")
    assert secret.value.reveal() == "sk_live_1"

    fetched = spec.assert_conforms(admin_api.get(f"{url}/stripe"), "get-config-store-secret")
    assert fetched == created
    replaced = admin_api.put(f"{url}/stripe", {"value": "sk_live_2"})
    assert replaced.status_code == 200
    spec.assert_conforms(replaced, "update-config-store-secret")
    assert Secret.objects.get(pk=secret.pk).value.reveal() == "sk_live_2"
    made = admin_api.put(f"{url}/new-one", {"value": "fresh"})
    assert made.status_code == 201
    assert spec.assert_conforms(made, "update-config-store-secret")["key"] == "new-one"
    listing = spec.assert_conforms(admin_api.get(url), "list-config-store-secrets")
    assert [item["key"] for item in listing["data"]] == ["new-one", "stripe"]

    deleted = admin_api.delete(f"{url}/stripe")
    assert deleted.status_code == 204
    spec.assert_conforms(deleted, "delete-config-store-secret")
    missing = spec.assert_conforms(admin_api.get(f"{url}/stripe"), "get-config-store-secret")
    assert missing["status"] == 404
    assert spec.assert_conforms(admin_api.delete(f"{url}/stripe"), "delete-config-store-secret")["status"] == 404
    assert list(Secret.objects.values_list("key", flat=True)) == ["new-one"]


def test_secret_keys_with_slashes_are_addressable(admin_api, spec, store):
    url = f"{stores_url(store.control_plane)}/{store.pk}/secrets"
    spec.assert_conforms(admin_api.post(url, {"key": "db/primary/password", "value": "p"}), "create-config-store-secret")
    fetched = spec.assert_conforms(admin_api.get(f"{url}/db/primary/password"), "get-config-store-secret")
    assert fetched["key"] == "db/primary/password"


@pytest.mark.parametrize(("body", "field", "rule"), [
    ({"key": "", "value": "v"}, "key", "min_length"),
    ({"key": "k" * 513, "value": "v"}, "key", "max_length"),
    ({"key": "k", "value": ""}, "value", "min_length"),
    ({"key": "k", "value": "v" * 5121}, "value", "max_length"),
    ({"key": "k"}, "value", "required"),
    ({"value": "v"}, "key", "required"),
    ({"key": "new\nline", "value": "v"}, "key", "invalid"),
])
def test_invalid_secret_bodies_are_400(admin_api, spec, store, body, field, rule):
    url = f"{stores_url(store.control_plane)}/{store.pk}/secrets"
    problem = spec.assert_conforms(admin_api.post(url, body), "create-config-store-secret")
    assert problem["status"] == 400
    assert (field, rule) in {(p["field"], p["rule"]) for p in problem["invalid_parameters"]}
    assert not Secret.objects.exists()


def test_secret_values_at_the_limits_are_stored(admin_api, store):
    url = f"{stores_url(store.control_plane)}/{store.pk}/secrets"
    assert admin_api.post(url, {"key": "k" * 512, "value": "é" * 5120}).status_code == 201
    assert admin_api.post(url, {"key": "one", "value": "x"}).status_code == 201
    assert Secret.objects.get(key="k" * 512).value.reveal() == "é" * 5120


def test_duplicate_secret_key_is_400(admin_api, spec, store):
    url = f"{stores_url(store.control_plane)}/{store.pk}/secrets"
    admin_api.post(url, {"key": "dup", "value": "first"})
    problem = spec.assert_conforms(admin_api.post(url, {"key": "dup", "value": "second"}), "create-config-store-secret")
    assert problem["invalid_parameters"][0]["field"] == "key"
    assert Secret.objects.get(key="dup").value.reveal() == "first"


def test_put_with_invalid_value_is_400(admin_api, spec, store):
    url = f"{stores_url(store.control_plane)}/{store.pk}/secrets/k"
    problem = spec.assert_conforms(admin_api.put(url, {"value": ""}), "update-config-store-secret")
    assert problem["invalid_parameters"][0]["rule"] == "min_length"
    assert not Secret.objects.exists()


def test_cursor_pagination_walks_every_item_once(admin_api, spec, store, org_admin, control_plane):
    make_secrets(store, org_admin, **{f"key-{index:02}": "v" for index in range(7)})
    url = f"{stores_url(control_plane)}/{store.pk}/secrets?page[size]=3"
    seen, pages = [], 0
    while url:
        body = spec.assert_conforms(admin_api.get(url), "list-config-store-secrets")
        assert body["meta"]["page"]["size"] == 3 and body["meta"]["page"]["previous"] is None
        seen += [item["key"] for item in body["data"]]
        pages += 1
        next_url = body["meta"]["page"]["next"]
        url = next_url.removeprefix("/api/us/v2") if next_url else None
    assert seen == [f"key-{index:02}" for index in range(7)]
    assert pages == 3

    for index in range(4):
        admin_api.post(stores_url(control_plane), {"name": f"store-{index}"})
    first = spec.assert_conforms(admin_api.get(stores_url(control_plane) + "?page[size]=2"), "list-config-stores")
    second = admin_api.get(first["meta"]["page"]["next"].removeprefix("/api/us/v2"))
    second = spec.assert_conforms(second, "list-config-stores")
    third = spec.assert_conforms(admin_api.get(second["meta"]["page"]["next"].removeprefix("/api/us/v2")),
                                 "list-config-stores")
    names = [item["name"] for item in first["data"] + second["data"] + third["data"]]
    assert names == ["payments-secrets", "store-0", "store-1", "store-2", "store-3"]
    assert third["meta"]["page"]["next"] is None


@pytest.mark.parametrize("query", ["page[size]=0", "page[size]=abc", "page[size]=100000", "page[after]=!!notacursor",
                                   "page[after]=e30"])
def test_bad_page_parameters_are_400(admin_api, spec, store, query):
    for operation, path in [("list-config-stores", stores_url(store.control_plane)),
                            ("list-config-store-secrets", f"{stores_url(store.control_plane)}/{store.pk}/secrets")]:
        problem = spec.assert_conforms(admin_api.get(f"{path}?{query}"), operation)
        assert problem["status"] == 400
        assert problem["invalid_parameters"][0]["field"] in ("page[size]", "page[after]")


def test_writes_that_cannot_get_a_data_key_store_nothing(admin_api, spec, store, local_kms):
    url = f"{stores_url(store.control_plane)}/{store.pk}/secrets"
    local_kms.stop()
    try:
        response = admin_api.post(url, {"key": "k", "value": "v"})
        put = admin_api.put(f"{url}/other", {"value": "v"})
    finally:
        local_kms.start()
    for answer in (response, put):
        assert answer.status_code == 503
        assert answer["Retry-After"]
        assert answer.json()["code"] == "kms_unavailable"
    assert not Secret.objects.exists()
    assert not DataKey.objects.exists()


def test_unknown_and_malformed_ids_are_404(admin_api, spec, store):
    for url in ["/control-planes/not-a-uuid/config-stores",
                f"/control-planes/{store.control_plane.pk}/config-stores/not-a-uuid",
                f"/control-planes/{store.control_plane.pk}/config-stores/00000000-0000-0000-0000-000000000000"]:
        response = admin_api.get(url)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/problem+json"


def test_control_plane_of_another_region_is_404(api, org, org_admin):
    eu = factories.make_control_plane(org, name="eu-cp", region="eu")
    assert api(org_admin, region="us").get(stores_url(eu)).status_code == 404
    assert api(org_admin, region="eu").get(stores_url(eu)).status_code == 200


def test_openapi_documents_the_operations(client):
    document = client.get("/api/us/v2/openapi.json").json()
    operation_ids = {op["operationId"] for item in document["paths"].values() for op in item.values()}
    assert operation_ids >= {"list-config-stores", "create-config-store", "get-config-store", "update-config-store",
                             "delete-config-store", "list-config-store-secrets", "create-config-store-secret",
                             "get-config-store-secret", "update-config-store-secret", "delete-config-store-secret"}
    secret_out = document["components"]["schemas"]["ConfigStoreSecretOut"]
    assert "value" not in secret_out["properties"]


@pytest.mark.parametrize("key", ["\n", "a\x00b", "tab\tkey", "%"])
def test_odd_keys_in_the_path_get_problem_json_never_a_500(admin_api, spec, store, key):
    from urllib.parse import quote

    url = f"{stores_url(store.control_plane)}/{store.pk}/secrets/{quote(key, safe='')}"
    got = admin_api.get(url)
    assert got.status_code == 404 and got["Content-Type"] == "application/problem+json"
    spec.assert_conforms(got, "get-config-store-secret")
    put = admin_api.put(url, {"value": "v"})  # none is a valid config store key (`%` breaks a reference's URL)
    assert spec.assert_conforms(put, "update-config-store-secret")["invalid_parameters"][0]["field"] == "key"
    assert admin_api.delete(url).status_code == 404
