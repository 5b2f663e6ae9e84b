"""Every answer under /api/{region}/ is JSON: errors are problem+json in Kong's shapes (BaseError; BadRequestError
with `invalid_parameters` on every 400), for unknown paths and methods too; and the CMEK API is served on /v0
(as Kong's docs spec lists it) and /v1 (as Kong's Terraform provider calls it) by one implementation."""

from __future__ import annotations

import json

import jsonschema
import pytest
import referencing
import yaml
from django.http import HttpResponse
from django.test import RequestFactory
from referencing.jsonschema import DRAFT202012

from encryption_keys.models import EncryptionKey
from konnect_admin import tokens, urls
from konnect_admin.problems import as_problem
from tests import factories
from tests.openapi import CMEK_SPEC, openapi30_to_json_schema

pytestmark = pytest.mark.django_db
PROVIDER_ACCEPT = "application/json;q=1, application/problem+json;q=0"
SPEC_URI = "urn:konnect:cmek-openapi"


@pytest.fixture(scope="module")
def kong_errors():
    """Kong's BaseError and BadRequestError (from the CMEK reference spec) as JSON Schema validators."""
    document = openapi30_to_json_schema(yaml.safe_load(CMEK_SPEC.read_text()))
    registry = referencing.Registry().with_resource(
        SPEC_URI, referencing.Resource.from_contents(document, default_specification=DRAFT202012))

    def validator(name):
        return jsonschema.Draft202012Validator({"$ref": f"{SPEC_URI}#/components/schemas/{name}"}, registry=registry)

    return {"base": validator("BaseError"), "bad_request": validator("BadRequestError")}


def assert_kong_problem(response, status: int, kong_errors) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json", response["Content-Type"]
    body = json.loads(response.content)
    kong_errors["bad_request" if status == 400 else "base"].validate(body)
    assert body["status"] == status
    assert body["type"] == f"https://httpstatuses.com/{status}"
    assert body["instance"].startswith("kong:trace:") and body["title"] and body["detail"]
    if status == 400:
        for parameter in body["invalid_parameters"]:
            assert {"field", "rule", "source", "reason"} <= parameter.keys(), parameter
    return body


@pytest.fixture
def pat(org, org_admin):
    _token, text = tokens.personal_access_token_create(user=org_admin, organization=org, name="api")
    return {"Authorization": f"Bearer {text}", "Accept": PROVIDER_ACCEPT}


def test_the_kong_shape_check_can_fail(kong_errors):
    with pytest.raises(jsonschema.ValidationError):
        kong_errors["bad_request"].validate({"status": 400, "title": "Bad Request", "instance": "kong:trace:1",
                                             "detail": "x"})  # no invalid_parameters


# --- unknown paths and methods ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "/api/us/v3/cmeks",  # a version we do not serve
    "/api/us/v1/cmeks/",  # trailing slash
    "/api/us/v1/cmeks/default/",
    "/api/us/v0/cmeks/default/extra",
    "/api/us/v2/control-planes",
    "/api/zz/v1/cmeks",  # not a region
    "/api/us/",
    "/api/us",
    "/api/",
])
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_unknown_paths_are_404_problem_json(client, pat, kong_errors, path, method):
    response = client.generic(method, path, b"{}", content_type="application/json", headers=pat)
    assert_kong_problem(response, 404, kong_errors)


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("POST", "/api/us/v1/cmeks", {"GET"}),
    ("DELETE", "/api/us/v0/cmeks", {"GET"}),
    ("PATCH", "/api/us/v1/cmeks/default", {"GET", "PUT", "DELETE"}),
    ("POST", "/api/us/v0/cmeks/default", {"GET", "PUT", "DELETE"}),
    ("PATCH", "/api/us/v2/control-planes/{cp}/config-stores/{store}", {"GET", "PUT", "DELETE"}),
    ("DELETE", "/api/us/v2/control-planes/{cp}/config-stores", {"GET", "POST"}),
    ("GET", "/api/us/v1/vault/resolve", {"POST"}),
])
def test_unknown_methods_are_405_problem_json_with_allow(client, pat, kong_errors, control_plane, store,
                                                          method, path, allowed):
    path = path.format(cp=control_plane.pk, store=store.pk)
    response = client.generic(method, path, b"{}", content_type="application/json", headers=pat)
    body = assert_kong_problem(response, 405, kong_errors)
    assert {m.strip() for m in response["Allow"].split(",")} == allowed
    assert body["title"] == "Method Not Allowed"


@pytest.fixture
def store(control_plane, org_admin):
    from vault import services

    return services.config_store_create(actor=org_admin, control_plane=control_plane, name="s")


# --- the statuses the APIs answer, all in Kong's shape ---------------------------------------------------------


@pytest.mark.parametrize("version", ["v0", "v1"])
def test_unparseable_body_is_400_with_invalid_parameters(client, pat, kong_errors, version):
    response = client.put(f"/api/us/{version}/cmeks/default", b"{not json", content_type="application/json",
                          headers=pat)
    body = assert_kong_problem(response, 400, kong_errors)
    assert body["invalid_parameters"][0]["source"] == "body"


def test_unparseable_config_store_body_is_400_with_invalid_parameters(client, pat, kong_errors, control_plane):
    response = client.post(f"/api/us/v2/control-planes/{control_plane.pk}/config-stores", b"[",
                           content_type="application/json", headers=pat)
    assert_kong_problem(response, 400, kong_errors)


def test_blob_id_errors_are_400_with_invalid_parameters(client, pat, kong_errors):
    body = assert_kong_problem(client.get("/api/us/v0/blobs/not%20a%20blob%20id", headers=pat), 400, kong_errors)
    assert body["invalid_parameters"] == [{"field": "blobId", "rule": "matches_regex", "source": "path",
                                           "reason": "must be 1–200 characters: letters, digits, ':', '.', '_' and '-'"}]


def test_every_error_status_is_kong_shaped(client, org, pat, kong_errors, control_plane, store, settings):
    """401, 403, 404, 413, 415 as the APIs answer them, with the provider's Accept (problem+json at q=0)."""
    assert_kong_problem(client.get("/api/us/v1/cmeks/default", headers={"Accept": PROVIDER_ACCEPT}), 401,
                        kong_errors)
    _t, member = tokens.personal_access_token_create(user=factories.make_role_user(org, "member"), organization=org,
                                                     name="m")
    assert_kong_problem(client.get("/api/us/v1/cmeks/default", headers={"Authorization": f"Bearer {member}"}),
                        403, kong_errors)
    assert_kong_problem(client.get("/api/us/v1/cmeks/default", headers=pat), 404, kong_errors)
    big = b" " * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    assert_kong_problem(client.put("/api/us/v1/cmeks/default", big, content_type="application/json", headers=pat),
                        413, kong_errors)
    assert_kong_problem(client.put(f"/api/us/v2/control-planes/{control_plane.pk}/config-stores/{store.pk}",
                                   "name=x", content_type="text/plain", headers=pat), 415, kong_errors)


def test_an_unexpected_error_is_500_problem_json(client, pat, kong_errors, monkeypatch):
    from encryption_keys import selectors

    def explode(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "key_for_region", explode)
    body = assert_kong_problem(client.get("/api/us/v1/cmeks/default", headers=pat), 500, kong_errors)
    assert "boom" not in body["detail"]


@pytest.mark.parametrize("status", [400, 403, 404, 406, 413, 415, 429, 500, 503])
def test_any_non_json_error_becomes_a_kong_problem_keeping_retry_after(kong_errors, status):
    html = HttpResponse("<h1>oops</h1>", status=status, content_type="text/html")
    html["Retry-After"] = "30"
    response = as_problem(html)
    assert_kong_problem(response, status, kong_errors)
    assert response["Retry-After"] == "30"
    assert b"oops" not in response.content


def test_json_and_success_answers_are_left_alone():
    ok = HttpResponse("<p>fine</p>", content_type="text/html")
    assert as_problem(ok) is ok
    problem = HttpResponse("{}", status=404, content_type="application/problem+json")
    assert as_problem(problem) is problem


@pytest.mark.parametrize(("handler", "status"), [
    ("handler400", 400), ("handler403", 403), ("handler404", 404), ("handler500", 500)])
def test_django_error_handlers_answer_problem_json_under_api_only(kong_errors, handler, status):
    view = getattr(urls, handler)
    args = () if status == 500 else (Exception("x"),)
    api = view(RequestFactory().get("/api/us/v1/cmeks/default"), *args)
    assert_kong_problem(api, status, kong_errors)
    page = view(RequestFactory().get("/control-planes/"), *args)
    assert page.status_code == status and page["Content-Type"].startswith("text/html")


# --- one CMEK implementation, two mounts ---------------------------------------------------------------------


def test_cmek_api_is_the_same_on_v0_and_v1(client, pat, cmek, org, kong_errors):
    put = client.put("/api/us/v1/cmeks/default", json.dumps({"key_arn": cmek, "name": "via v1"}),
                     content_type="application/json", headers=pat)
    assert put.status_code == 200 and put["Content-Type"].startswith("application/json")
    v0 = client.get("/api/us/v0/cmeks/default", headers=pat).json()
    assert v0 == client.get("/api/us/v1/cmeks/default", headers=pat).json() == put.json()
    assert client.get("/api/us/v1/cmeks", headers=pat).json()["data"] == [v0]
    renamed = client.put("/api/us/v0/cmeks/default", json.dumps({"key_arn": cmek, "name": "via v0"}),
                         content_type="application/json", headers=pat)
    assert renamed.status_code == 200
    assert client.get("/api/us/v1/cmeks/default", headers=pat).json()["name"] == "via v0"
    assert client.delete("/api/us/v1/cmeks/default", headers=pat).status_code == 204
    assert not EncryptionKey.objects.filter(organization=org).exists()
    assert_kong_problem(client.get("/api/us/v0/cmeks/default", headers=pat), 404, kong_errors)


def test_v1_openapi_lists_the_cmek_operations_next_to_the_data_plane_ones(client):
    document = client.get("/api/us/v1/openapi.json").json()
    operations = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    assert {"list-cmeks", "get-cmek", "put-cmek", "delete-cmek", "resolve-vault-references"} <= operations
