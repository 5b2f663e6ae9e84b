"""An oversized body to any operation of any API is a 413 problem+json naming the limit, never a 500.

Every API the project mounts (konnect_admin.api.ROUTERS) and every operation its OpenAPI document lists that
takes a body gets one byte more than Django reads (DATA_UPLOAD_MAX_MEMORY_SIZE), with valid credentials — or one
byte more than the operation's own documented limit (`x-konnect-max-body-bytes`, e.g. the Debugger's trace batches).
"""

import json
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from konnect_admin import tokens
from konnect_admin.api import ROUTERS
from konnect_admin.problems import PROBLEM_CONTENT_TYPE
from tests import factories

VERSIONS = sorted({api.urls_namespace.removeprefix("api-") for api, _prefix, _router in ROUTERS})
BODY_METHODS = {"post", "put", "patch"}
LIMIT_DETAIL = re.compile(r"limit (?:is|of) \d+ bytes")


def operations_with_a_body(version: str) -> list[tuple[str, str, str, int]]:
    document = json.loads(Client().get(f"/api/us/{version}/openapi.json").content)
    found, server = [], document["servers"][0]["url"]  # paths are relative to the region's server, as Kong's
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method in BODY_METHODS or "requestBody" in operation:
                content = next(iter(operation.get("requestBody", {}).get("content", {})), "*/*")
                limit = operation.get("x-konnect-max-body-bytes", settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
                found.append((method, server + path, "application/octet-stream" if content == "*/*" else content,
                              limit))
    return found


@pytest.fixture
def world(org, control_plane):
    from debugger.models import DebugSession, SessionStatus
    from vault.models import ConfigStore

    admin = factories.make_role_user(org, "org_admin")
    now = timezone.now()
    session = DebugSession.objects.create(
        control_plane=control_plane, name="limits", status=SessionStatus.IN_PROGRESS, duration_seconds=600,
        started_at=now, ends_at=now + timedelta(minutes=10), retain_until=now + timedelta(days=15))
    store = ConfigStore.objects.create(control_plane=control_plane, name="limits store")
    _pat, personal = tokens.personal_access_token_create(user=admin, organization=org, name="limits")
    _dpt, data_plane = tokens.data_plane_token_create(actor=admin, control_plane=control_plane, name="limits")
    return {
        "tokens": {"v0": personal, "v1": data_plane, "v2": personal},
        "path": {"cmekId": "default", "session_id": session.pk, "blobId": "limits-blob", "controlPlaneId":
                 control_plane.pk, "configStoreId": store.pk, "key": "db-password"},
    }


def test_every_api_is_listed():
    assert VERSIONS == ["v0", "v1", "v2"]


@pytest.mark.django_db
@pytest.mark.parametrize("version", VERSIONS)
def test_oversized_body_is_413_problem_json_on_every_operation(version, world, client):
    operations = operations_with_a_body(version)
    assert operations, f"the {version} API lists no operation that takes a body"
    failures = []
    for method, path, content_type, limit in operations:
        body = b" " * (limit + 1)
        names = re.findall(r"{(\w+)}", path)
        assert set(names) <= world["path"].keys(), f"{method} {path}: give the test a value for {names}"
        url = re.sub(r"{(\w+)}", lambda m: str(world["path"][m[1]]), path)
        # v1 serves the data plane (data-plane token) and the CMEK API (personal token) side by side
        token = world["tokens"]["v0"] if "/cmeks" in path or "/materials/" in path else world["tokens"][version]
        response = client.generic(method.upper(), url, body, content_type=content_type,
                                  HTTP_AUTHORIZATION=f"Bearer {token}")
        problem = response.json() if response["Content-Type"].startswith(PROBLEM_CONTENT_TYPE) else {}
        if response.status_code != 413 or not LIMIT_DETAIL.search(problem.get("detail", "")):
            failures.append(f"{method.upper()} {url} → {response.status_code} {response.content[:200]!r}")
    assert not failures, "\n".join(failures)
