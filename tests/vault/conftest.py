"""Vault test fixtures: API clients with real tokens, a linked CMEK, and the Konnect Config Store spec."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker

from encryption_keys.models import EncryptionKey
from konnect_admin import tokens
from tests import factories, leaks
from tests.openapi import CONFIG_STORE_SPEC, openapi30_to_json_schema
from vault import services

SPEC_PATH = CONFIG_STORE_SPEC
MARKER = leaks.plant("wr1te-0nly-marker-7f3c9a")  # a secret value that must never come back


@pytest.fixture(autouse=True)
def kms_for_every_test(local_kms):
    """Every test here writes or reads secrets under a data key: the local KMS server
    for each (tests/conftest.py's `local_kms`)."""
    return local_kms


class ApiClient:
    """The Django test client speaking JSON with a bearer token; remembers every response."""

    def __init__(self, client, token: str, region: str = "us", prefix: str = "v2"):
        self.client, self.token, self.region, self.prefix = client, token, region, prefix
        self.responses = []

    def url(self, path: str) -> str:
        return f"/api/{self.region}/{self.prefix}{path}"

    def call(self, method: str, path: str, body=None, *, content_type="application/json", **extra):
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {self.token}", **extra}
        if body is not None:
            kwargs["data"] = json.dumps(body) if content_type == "application/json" else body
            kwargs["content_type"] = content_type
        response = getattr(self.client, method)(self.url(path), **kwargs)
        self.responses.append(response)
        return response

    def get(self, path, **kw):
        return self.call("get", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("post", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.call("put", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("delete", path, **kw)


@pytest.fixture
def api(client):
    """`api(user)` → ApiClient with a fresh personal access token of `user` in their first organization."""

    def _api(user, *, organization=None, region="us"):
        organization = organization or user.memberships.first().organization
        _token, text = tokens.personal_access_token_create(user=user, organization=organization, name="tests")
        return ApiClient(client, text, region=region)

    return _api


@pytest.fixture
def data_plane(client):
    """`data_plane(control_plane)` → ApiClient on /api/{region}/v1 with a data-plane token of that control plane."""

    def _data_plane(control_plane, *, region=None):
        admin = factories.make_role_user(control_plane.organization, "org_admin")
        _token, text = tokens.data_plane_token_create(actor=admin, control_plane=control_plane, name="dp")
        return ApiClient(client, text, region=region or control_plane.region, prefix="v1")

    return _data_plane


@pytest.fixture
def vault_admin(org, control_plane):
    return factories.make_role_user(org, "vault_admin", control_plane)


@pytest.fixture
def store(control_plane, org_admin):
    return services.config_store_create(actor=org_admin, control_plane=control_plane, name="payments-secrets")


@pytest.fixture
def link_cmek(cmek):
    """`link_cmek(org, region="us")` links the `cmek` fixture key as the organization's CMEK for the region."""

    def _link(organization, region="us"):
        return EncryptionKey.objects.create(organization=organization, region=region, name="customer key",
                                            key_ref=cmek)

    return _link


def make_secrets(store, actor, **values):
    return [services.secret_create(actor=actor, store=store, key=key, value=value) for key, value in values.items()]


# --- the Konnect spec --------------------------------------------------------------------------------------


def _deref(node, root):
    if isinstance(node, list):
        return [_deref(item, root) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        return _deref(target, root)
    return {key: _deref(value, root) for key, value in node.items()}


class Spec:
    def __init__(self, path: Path):
        raw = yaml.safe_load(path.read_text())
        self.document = _deref(openapi30_to_json_schema(raw), openapi30_to_json_schema(raw))
        self.operations = {
            operation["operationId"]: operation
            for item in self.document["paths"].values()
            for method, operation in item.items()
            if isinstance(operation, dict) and "operationId" in operation
        }
        self.base_error = self.document["components"]["schemas"]["BaseError"]

    def schema_for(self, operation_id: str, status: int) -> tuple[str | None, dict | None]:
        responses = self.operations[operation_id]["responses"]
        response = responses.get(str(status))
        if response is None:
            assert status >= 400, f"{operation_id} has no {status} response in the spec"
            return "application/problem+json", self.base_error
        content = response.get("content")
        if not content:
            return None, None
        content_type, media = next(iter(content.items()))
        return content_type, media["schema"]

    def assert_conforms(self, response, operation_id: str) -> dict | None:
        """Validate a real response against the spec: status known, content type, body schema."""
        content_type, schema = self.schema_for(operation_id, response.status_code)
        if schema is None:
            assert response.content == b"", f"{operation_id} {response.status_code} must have no body"
            return None
        assert response["Content-Type"].split(";")[0] == content_type, response["Content-Type"]
        body = json.loads(response.content)
        errors = sorted(Draft202012Validator(copy.deepcopy(schema), format_checker=FormatChecker()).iter_errors(body),
                        key=str)
        assert not errors, f"{operation_id} {response.status_code}: {[e.message for e in errors]} in {body}"
        return body


@pytest.fixture(scope="session")
def spec():
    return Spec(SPEC_PATH)
