"""The CMEK API: real responses (success and every error status) validated against Konnect's OpenAPI spec."""

import base64
import json
import sys
from datetime import datetime
from pathlib import Path

import jsonschema
import pytest
import referencing
import yaml
from referencing.jsonschema import DRAFT202012

from devtools import local_kms as kms_admin
from encryption_keys.models import EncryptionKey
from konnect_admin import tokens
from konnect_admin.models import AuditEvent
from tests import factories
from tests.openapi import CMEK_SPEC, openapi30_to_json_schema

pytestmark = pytest.mark.django_db
SPEC_PATH = CMEK_SPEC
SPEC_URI = "urn:konnect:cmek-openapi"
BASE = "/api/us/v0"


# --- the spec as JSON Schema ---------------------------------------------------------------------------


class Spec:
    def __init__(self, path: Path):
        self.document = openapi30_to_json_schema(yaml.safe_load(path.read_text()))
        resource = referencing.Resource.from_contents(self.document, default_specification=DRAFT202012)
        self.registry = referencing.Registry().with_resource(SPEC_URI, resource)

    def resolve(self, node: dict) -> dict:
        while "$ref" in node:
            node = self.registry.resolver(SPEC_URI).lookup(SPEC_URI + node["$ref"]).contents
        return node

    def response_spec(self, path: str, method: str, status: int, fallback: str | None) -> dict:
        responses = self.document["paths"][path][method]["responses"]
        if str(status) in responses:
            return self.resolve(responses[str(status)])
        assert fallback, f"{method.upper()} {path} documents no {status} response"
        return self.resolve({"$ref": f"#/components/responses/{fallback}"})

    def validate(self, response, path: str, method: str, *, fallback: str | None = None, schema: str | None = None):
        """Check status, content type and body of a real response against the spec; return the body."""
        if schema is not None:  # a status the spec does not document: validate the shape it should have
            content_type, body_schema = "application/problem+json", {"$ref": f"#/components/schemas/{schema}"}
        else:
            spec = self.response_spec(path, method, response.status_code, fallback)
            if "content" not in spec:
                assert response.content == b"", "an empty response is documented"
                return None
            [(content_type, media)] = spec["content"].items()
            body_schema = media["schema"]
        assert response["Content-Type"].split(";")[0] == content_type
        body = json.loads(response.content)
        validator = jsonschema.Draft202012Validator(
            {"$ref": SPEC_URI + body_schema["$ref"]} if "$ref" in body_schema else body_schema,
            registry=self.registry, format_checker=jsonschema.FormatChecker(),
        )
        validator.validate(body)
        return body


@pytest.fixture(scope="module")
def spec():
    return Spec(SPEC_PATH)


def test_the_validator_rejects_what_the_spec_forbids(spec):
    """The validation below can fail: a body missing required fields or with a bad rule is refused."""
    cmek = spec.resolve({"$ref": "#/components/responses/CMEK"})["content"]["application/json"]["schema"]
    validator = jsonschema.Draft202012Validator({"$ref": SPEC_URI + cmek["$ref"]}, registry=spec.registry)
    assert not validator.is_valid({"id": "default", "name": "x"})
    bad = {"$ref": SPEC_URI + "#/components/schemas/BadRequestError"}
    problem = {"status": 400, "title": "Bad Request", "instance": "kong:trace:1", "detail": "x",
               "invalid_parameters": [{"field": "key_arn", "rule": "no_such_rule", "reason": "x"}]}
    assert not jsonschema.Draft202012Validator(bad, registry=spec.registry).is_valid(problem)
    problem["invalid_parameters"][0]["rule"] = None  # nullable: true
    assert jsonschema.Draft202012Validator(bad, registry=spec.registry).is_valid(problem)


# --- helpers ---------------------------------------------------------------------------------------------


def bearer(user, organization):
    _token, text = tokens.personal_access_token_create(user=user, organization=organization, name="api")
    return {"Authorization": f"Bearer {text}"}


@pytest.fixture
def admin_auth(org, org_admin):
    return bearer(org_admin, org)


def put(client, auth, body, cmek_id="default", base=BASE):
    return client.put(f"{base}/cmeks/{cmek_id}", data=json.dumps(body), content_type="application/json", headers=auth)


@pytest.fixture
def linked(client, admin_auth, cmek, spec):
    response = put(client, admin_auth, {"key_arn": cmek, "name": "Acme US", "description": "prod"})
    spec.validate(response, "/cmeks/{cmekId}", "put")
    assert response.status_code == 200
    return EncryptionKey.objects.get()


# --- auth ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer kpat_not-a-real-token"}])
def test_unauthenticated_is_401_problem(client, spec, headers):
    response = client.get(f"{BASE}/cmeks/default", headers=headers)
    assert response.status_code == 401
    spec.validate(response, "/cmeks/{cmekId}", "get")
    spec.validate(client.get(f"{BASE}/cmeks", headers=headers), "/cmeks", "get", fallback="Unauthorized")


# --- PUT -------------------------------------------------------------------------------------------------


def test_put_links_the_key_after_verification(client, org, org_admin, admin_auth, cmek, spec, kms_calls):
    response = put(client, admin_auth, {"key_arn": cmek, "name": "Acme US", "description": "prod"})
    body = spec.validate(response, "/cmeks/{cmekId}", "put")
    assert response.status_code == 200
    assert {k: body[k] for k in ("id", "key_arn", "name", "description")} == {
        "id": "default", "key_arn": cmek, "name": "Acme US", "description": "prod"}
    datetime.fromisoformat(body["created_at"])
    key = EncryptionKey.objects.get()
    assert (key.organization, key.region, key.linked_by) == (org, "us", org_admin)
    assert AuditEvent.objects.filter(action="encryption_key.linked", actor=org_admin).count() == 1
    assert kms_calls(organization=org, operation="GenerateDataKey", key_ref=cmek).count() == 1


def test_put_with_a_failing_check_is_400_with_invalid_parameters(client, admin_auth, cmek, spec):
    kms_admin.disable_key(cmek)
    response = put(client, admin_auth, {"key_arn": cmek, "name": "Acme US"})
    body = spec.validate(response, "/cmeks/{cmekId}", "put")
    assert response.status_code == 400
    assert body["invalid_parameters"] == [{
        "field": "key_arn", "rule": "invalid", "source": "body",
        "reason": "Key enabled: The key is disabled: KMS refuses to use it. Enable the key in AWS KMS.",
    }]
    assert not EncryptionKey.objects.exists()


def test_put_with_an_alias_arn_is_is_arn(client, admin_auth, spec):
    response = put(client, admin_auth, {"key_arn": "arn:aws:kms:us-west-2:123456789012:alias/prod", "name": "x"})
    body = spec.validate(response, "/cmeks/{cmekId}", "put")
    assert [p["rule"] for p in body["invalid_parameters"]] == ["is_arn"]
    assert "Alias ARNs are not accepted" in body["invalid_parameters"][0]["reason"]


def test_put_with_a_key_of_another_geo_and_single_region(client, admin_auth, spec):
    arn = kms_admin.create_key(region="eu-west-1")
    body = spec.validate(put(client, admin_auth, {"key_arn": arn, "name": "x"}), "/cmeks/{cmekId}", "put")
    assert [p["reason"].split(":")[0] for p in body["invalid_parameters"]] == [
        "Key region belongs to the Konnect region"]


@pytest.mark.parametrize("body, rule", [({"key_arn": "arn", "name": ""}, "min_length"),
                                        ({"name": "x"}, "required"),
                                        ({"key_arn": 5, "name": "x"}, "is_string"),
                                        ({"key_arn": "arn", "name": "a\x00b"}, "matches_regex")])
def test_put_body_validation_is_a_400_problem(client, admin_auth, spec, body, rule):
    response = put(client, admin_auth, body)
    problem = spec.validate(response, "/cmeks/{cmekId}", "put")
    assert response.status_code == 400 and problem["invalid_parameters"][0]["rule"] == rule


@pytest.mark.parametrize("role", ["org_admin_read_only", "cp_admin_team", "member"])
def test_non_admins_cannot_link_through_the_api(client, org, cmek, spec, role, kms_calls):
    response = put(client, bearer(factories.make_role_user(org, role), org), {"key_arn": cmek, "name": "x"})
    assert response.status_code == 403
    spec.validate(response, "/cmeks/{cmekId}", "put")
    assert not EncryptionKey.objects.exists() and kms_calls().count() == 0


def test_put_with_the_same_arn_renames_without_kms_calls(client, admin_auth, linked, spec, kms_calls):
    before = kms_calls().count()
    body = spec.validate(put(client, admin_auth, {"key_arn": linked.key_ref, "name": "Renamed"}),
                         "/cmeks/{cmekId}", "put")
    assert body["name"] == "Renamed" and body["description"] == ""
    assert EncryptionKey.objects.get().name == "Renamed"
    assert kms_calls().count() == before
    assert AuditEvent.objects.filter(action="encryption_key.updated").count() == 1


def test_put_with_another_arn_is_a_replacement(client, admin_auth, linked, spec, monkeypatch):
    monkeypatch.setitem(sys.modules, "encryption_keys.lifecycle", None)
    other = kms_admin.create_key(region="us-west-2", multi_region=True)
    response = put(client, admin_auth, {"key_arn": other, "name": "New"})
    body = spec.validate(response, "/cmeks/{cmekId}", "put", schema="BaseError")
    assert response.status_code == 409 and body["code"] == "replacement_unavailable"
    assert EncryptionKey.objects.get().key_ref == linked.key_ref


def new_customer_key():
    arn = kms_admin.create_key(region="us-west-2", multi_region=True)
    kms_admin.replicate_key(arn, to_region="us-east-2")
    return arn


def test_put_with_another_arn_replaces_through_key_lifecycle(client, admin_auth, linked, spec):
    new_arn = new_customer_key()
    response = put(client, admin_auth, {"key_arn": new_arn, "name": "New key"})
    body = spec.validate(response, "/cmeks/{cmekId}", "put")
    assert response.status_code == 200 and (body["key_arn"], body["name"]) == (new_arn, "New key")
    assert EncryptionKey.objects.get().key_ref == new_arn
    assert AuditEvent.objects.get(action="encryption_key.replaced").details["old_key_ref"] == linked.key_ref


def test_put_replacement_with_a_failing_key_is_400(client, admin_auth, linked, spec):
    new_arn = new_customer_key()
    kms_admin.disable_key(new_arn)
    response = put(client, admin_auth, {"key_arn": new_arn, "name": "New key"})
    body = spec.validate(response, "/cmeks/{cmekId}", "put")
    assert response.status_code == 400 and body["invalid_parameters"][0]["reason"].startswith("Key enabled:")
    assert EncryptionKey.objects.get().key_ref == linked.key_ref


def test_put_while_kms_is_unreachable_is_503_with_retry_after(client, admin_auth, cmek, spec, local_kms):
    local_kms.stop()
    try:
        response = put(client, admin_auth, {"key_arn": cmek, "name": "x"})
    finally:
        local_kms.start()
    spec.validate(response, "/cmeks/{cmekId}", "put", schema="BaseError")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert not EncryptionKey.objects.exists()


# --- GET -------------------------------------------------------------------------------------------------


def test_get_the_default_cmek(client, admin_auth, linked, spec):
    response = client.get(f"{BASE}/cmeks/default", headers=admin_auth)
    body = spec.validate(response, "/cmeks/{cmekId}", "get")
    assert response.status_code == 200 and body["key_arn"] == linked.key_ref and body["id"] == "default"


def test_read_only_admin_reads_but_a_member_cannot(client, org, linked, spec):
    read_only = bearer(factories.make_role_user(org, "org_admin_read_only"), org)
    assert client.get(f"{BASE}/cmeks/default", headers=read_only).status_code == 200
    response = client.get(f"{BASE}/cmeks/default", headers=bearer(factories.make_role_user(org, "member"), org))
    assert response.status_code == 403
    spec.validate(response, "/cmeks/{cmekId}", "get")


def test_unknown_cmek_id_is_404_for_every_method(client, admin_auth, linked, spec):
    get = client.get(f"{BASE}/cmeks/other", headers=admin_auth)
    spec.validate(get, "/cmeks/{cmekId}", "get")
    delete = client.delete(f"{BASE}/cmeks/other", headers=admin_auth)
    spec.validate(delete, "/cmeks/{cmekId}", "delete")
    response = put(client, admin_auth, {"key_arn": linked.key_ref, "name": "x"}, cmek_id="other")
    spec.validate(response, "/cmeks/{cmekId}", "put", fallback="NotFound")
    assert get.status_code == delete.status_code == response.status_code == 404
    assert EncryptionKey.objects.get().name == "Acme US"


def test_no_key_in_the_region_is_404(client, admin_auth, linked, spec):
    response = client.get("/api/eu/v0/cmeks/default", headers=admin_auth)
    assert response.status_code == 404
    spec.validate(response, "/cmeks/{cmekId}", "get")
    assert client.get("/api/eu/v0/cmeks", headers=admin_auth).json()["data"] == []


def test_another_organization_can_neither_see_nor_change_the_key(client, other_org, other_org_admin, linked, spec):
    other = bearer(other_org_admin, other_org)
    response = client.get(f"{BASE}/cmeks/default", headers=other)
    assert response.status_code == 404
    spec.validate(response, "/cmeks/{cmekId}", "get")
    assert client.get(f"{BASE}/cmeks", headers=other).json()["data"] == []
    assert client.delete(f"{BASE}/cmeks/default", headers=other).status_code == 404
    assert EncryptionKey.objects.filter(pk=linked.pk, key_ref=linked.key_ref, name="Acme US").exists()


@pytest.mark.parametrize("sibling", [False, True])
def test_globex_cannot_link_acmes_key_or_its_replica_through_the_api(client, org, other_org, other_org_admin, linked,
                                                                     spec, sibling, kms_calls):
    arn = linked.key_ref.replace(":us-west-2:", ":us-east-2:") if sibling else linked.key_ref
    response = put(client, bearer(other_org_admin, other_org), {"key_arn": arn, "name": "Globex US"})
    body = spec.validate(response, "/cmeks/{cmekId}", "put", schema="BaseError")
    assert response.status_code == 409 and body["code"] == "key_owned_by_another_organization"
    assert "another organization" in body["detail"] and "Acme" not in response.content.decode()
    assert str(org.pk) not in response.content.decode()
    assert not EncryptionKey.objects.filter(organization=other_org).exists()
    assert kms_calls(organization=other_org).count() == 0


def test_globex_cannot_replace_its_key_with_acmes_through_the_api(client, other_org, other_org_admin, linked, spec):
    globex = bearer(other_org_admin, other_org)
    assert put(client, globex, {"key_arn": new_customer_key(), "name": "Globex US"}).status_code == 200
    response = put(client, globex, {"key_arn": linked.key_ref, "name": "Globex US"})
    body = spec.validate(response, "/cmeks/{cmekId}", "put", schema="BaseError")
    assert response.status_code == 409 and body["code"] == "key_owned_by_another_organization"
    assert EncryptionKey.objects.get(organization=other_org).key_ref != linked.key_ref


# --- list ------------------------------------------------------------------------------------------------


def test_list_is_empty_before_linking(client, admin_auth, spec):
    body = spec.validate(client.get(f"{BASE}/cmeks", headers=admin_auth), "/cmeks", "get")
    assert body == {"data": [], "meta": {"page": {"first": f"{BASE}/cmeks?page%5Bsize%5D=10", "next": None,
                                                  "previous": None, "size": 10}}}


def test_list_filters_by_name(client, admin_auth, linked, spec):
    def names(**query):
        body = spec.validate(client.get(f"{BASE}/cmeks", query, headers=admin_auth), "/cmeks", "get")
        return [item["name"] for item in body["data"]]

    assert names() == ["Acme US"]
    assert names(**{"filter[name]": "Acme US"}) == ["Acme US"]
    assert names(**{"filter[name]": "Acme"}) == []
    assert names(**{"filter[name][contains]": "cme U"}) == ["Acme US"]
    assert names(**{"filter[name][contains]": "zzz"}) == []


def test_list_cursor_pagination(client, admin_auth, linked, spec):
    body = spec.validate(client.get(f"{BASE}/cmeks", {"page[size]": 1}, headers=admin_auth), "/cmeks", "get")
    assert [item["name"] for item in body["data"]] == ["Acme US"]
    assert body["meta"]["page"]["size"] == 1 and body["meta"]["page"]["next"] is None
    cursor = base64.urlsafe_b64encode(json.dumps({"id": str(linked.pk)}).encode()).decode()
    after = spec.validate(client.get(f"{BASE}/cmeks", {"page[after]": cursor}, headers=admin_auth), "/cmeks", "get")
    assert after["data"] == [] and after["meta"]["page"]["next"] is None
    # Walking back from past the end finds the key again through the `previous` link.
    past_end = base64.urlsafe_b64encode(json.dumps({"id": "ffffffff-ffff-ffff-ffff-ffffffffffff"}).encode()).decode()
    before = spec.validate(client.get(f"{BASE}/cmeks", {"page[before]": past_end, "page[size]": 5},
                                      headers=admin_auth), "/cmeks", "get")
    assert [item["id"] for item in before["data"]] == ["default"]
    assert before["meta"]["page"]["next"].startswith(f"{BASE}/cmeks?page%5Bsize%5D=5&page%5Bafter%5D=")


@pytest.mark.parametrize("query, field", [
    ({"page[size]": "ten"}, "page[size]"), ({"page[size]": "0"}, "page[size]"), ({"page[size]": "²"}, "page[size]"),
    ({"page[after]": "not-a-cursor"}, "page[after]"),
    ({"page[before]": base64.urlsafe_b64encode(b'{"id": 5}').decode()}, "page[before]"),
    ({"page[after]": base64.urlsafe_b64encode(b"[1]").decode()}, "page[after]"),
    ({"filter[name]": "a\x00b"}, "filter[name]"),
])
def test_bad_paging_is_a_400_problem(client, admin_auth, spec, query, field):
    response = client.get(f"{BASE}/cmeks", query, headers=admin_auth)
    body = spec.validate(response, "/cmeks", "get", fallback="BadRequest")
    assert response.status_code == 400 and body["invalid_parameters"][0]["field"] == field


def test_list_needs_key_view(client, org, spec):
    response = client.get(f"{BASE}/cmeks", headers=bearer(factories.make_role_user(org, "cp_viewer"), org))
    assert response.status_code == 403
    spec.validate(response, "/cmeks", "get", fallback="Forbidden")


# --- DELETE ----------------------------------------------------------------------------------------------


def test_delete_unlinks(client, admin_auth, linked, spec, org_admin):
    response = client.delete(f"{BASE}/cmeks/default", headers=admin_auth)
    assert response.status_code == 204
    spec.validate(response, "/cmeks/{cmekId}", "delete")
    assert not EncryptionKey.objects.exists()
    assert AuditEvent.objects.filter(action="encryption_key.unlinked", actor=org_admin).count() == 1
    again = client.delete(f"{BASE}/cmeks/default", headers=admin_auth)
    assert again.status_code == 404
    spec.validate(again, "/cmeks/{cmekId}", "delete")


def test_read_only_admin_cannot_delete(client, org, linked, spec):
    response = client.delete(f"{BASE}/cmeks/default",
                             headers=bearer(factories.make_role_user(org, "org_admin_read_only"), org))
    assert response.status_code == 403
    spec.validate(response, "/cmeks/{cmekId}", "delete")
    assert EncryptionKey.objects.filter(pk=linked.pk).exists()


def test_openapi_document_lists_the_cmek_operations(client):
    document = client.get(f"{BASE}/openapi.json").json()
    operations = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    assert {"list-cmeks", "get-cmek", "put-cmek", "delete-cmek"} <= operations
    assert document["servers"][0]["url"] == BASE  # paths relative to the region's server, as Kong's
    parameters = {p["name"] for p in document["paths"]["/cmeks"]["get"]["parameters"]}
    assert {"page[size]", "page[after]", "page[before]", "filter"} <= parameters  # Kong's deepObject `filter`

