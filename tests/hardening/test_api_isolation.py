"""Isolation matrix for the JSON APIs: every operation of every published OpenAPI document × every caller.

Operations are enumerated from /api/us/v{0,1,2}/openapi.json, so a new operation without a rule fails
`test_every_operation_has_a_rule`. Callers: no token, a data-plane token of organization A's control
plane, personal access tokens of A's members by role, and — with A's object ids — the org admin of B and
a data-plane token of B. Each call runs in a rolled-back savepoint.

"ok" = 2xx, or 400/409/422 (past the permission check, the request itself was refused); "denied" = 401,
403 or 404 — always as application/problem+json.
"""

from __future__ import annotations

import json

import pytest
from django.db import transaction
from django.test import Client

from konnect_admin import tokens

pytestmark = pytest.mark.django_db

CALLERS = ["none", "dp_a", "member", "viewer", "debug_session_creator", "vault_admin", "cp_admin", "org_admin",
           "other_org_admin", "dp_b", "sa_materials"]
CP_VAULT_READERS = {"viewer", "vault_admin", "cp_admin", "org_admin"}
CP_VAULT_WRITERS = {"vault_admin", "cp_admin", "org_admin"}
# A person's blob is the organization's: storing one takes plaintext rights on `*` (the one-CP roles here lack them).
BLOB_WRITERS = {"dp_a", "org_admin"}
BLOB_READERS = {"dp_a", "debug_session_creator", "cp_admin", "org_admin"}  # plaintext roles (debugger/blobs.py)
TRACE = {"trace_id": "ab" * 16, "start_time": "2026-11-28T12:00:00Z", "method": "GET"}
LOG = {"time": "2026-11-28T12:00:00Z", "level": "info", "message": "hello"}

# operationId → (allowed callers, JSON body or None). `other_org_admin` on org-scoped operations (cmeks)
# reaches its own organization's key; what it must never see is A's key ARN (checked below).
RULES: dict[str, tuple[set[str], dict | None]] = {
    "list-cmeks": ({"org_admin", "other_org_admin"}, None),
    "get-cmek": ({"org_admin", "other_org_admin"}, None),
    "put-cmek": ({"org_admin", "other_org_admin"}, {"key_arn": "{own_key_arn}", "name": "renamed"}),
    "delete-cmek": ({"org_admin", "other_org_admin"}, None),
    # blob ids are per organization: B writing the same id writes B's own blob (and cannot read A's)
    "put-blob": (BLOB_WRITERS | {"other_org_admin", "dp_b"}, None),
    "get-blob": (BLOB_READERS, None),
    "debugger_api_sessions_to_sample": ({"dp_a", "dp_b"}, None),
    "debugger_api_post_traces": ({"dp_a"}, {"traces": [TRACE]}),
    "debugger_api_post_trace_batch": ({"dp_a"}, {"traces": [TRACE]}),
    "debugger_api_post_payloads": ({"dp_a"}, {"payloads": [{"trace_id": "{trace_id}", "kind": "client_response"}]}),
    "debugger_api_post_logs": ({"dp_a"}, {"logs": [LOG]}),
    "debugger_api_finish_session": ({"dp_a"}, None),
    "resolve-vault-references": ({"dp_a", "dp_b"}, {"references": ["{vault://alpha-vault/db-password}"]}),
    "list-config-stores": (CP_VAULT_READERS, None),
    "create-config-store": (CP_VAULT_WRITERS, {"name": "new store"}),
    "get-config-store": (CP_VAULT_READERS, None),
    "update-config-store": (CP_VAULT_WRITERS, {"name": "renamed store"}),
    "delete-config-store": (CP_VAULT_WRITERS, None),
    "list-config-store-secrets": (CP_VAULT_READERS, None),
    "create-config-store-secret": (CP_VAULT_WRITERS, {"key": "new-key", "value": "new value"}),
    "get-config-store-secret": (CP_VAULT_READERS, None),
    "update-config-store-secret": (CP_VAULT_WRITERS, {"value": "changed value"}),
    "delete-config-store-secret": (CP_VAULT_WRITERS, None),
    # Envelope materials: system accounts with the Envelope Materials role only (not even an Organization Admin);
    # `sa_materials` (a system account of A holding only that role) is denied everything else.
    "create-encryption-material": ({"sa_materials"}, None),
    "create-decryption-material": ({"sa_materials"}, {"encrypted_data_key": "AAAA"}),
}


def operations() -> list[tuple[str, str, str]]:
    found = []
    for version in ("v0", "v1", "v2"):
        document = json.loads(Client().get(f"/api/us/{version}/openapi.json").content)
        server = document["servers"][0]["url"]  # paths are relative to the region's server, as Kong's
        for path, methods in document["paths"].items():
            for method, operation in methods.items():
                found.append((operation["operationId"], method.upper(), server + path))
    return found


def test_every_operation_has_a_rule():
    ids = [operation_id for operation_id, _, _ in operations()]
    assert not [i for i in ids if i not in RULES], f"API operations without an isolation rule: {ids}"
    assert not [i for i in RULES if i not in ids], "rules for operations that no longer exist"


def path_for(path: str, tenant: dict) -> str:
    return (path.replace("{cmekId}", "default").replace("{blobId}", "trace-blob")
            .replace("{session_id}", str(tenant["session"])).replace("{controlPlaneId}", str(tenant["cp"]))
            .replace("{configStoreId}", str(tenant["store"])).replace("{key}", "db-password"))


@pytest.fixture
def callers(world):
    a, b, users = world["a"], world["b"], world["users"]
    bearer = {"none": None, "dp_a": a["dp_text"], "dp_b": b["dp_text"], "org_admin": a["pat_text"],
              "other_org_admin": b["pat_text"], "sa_materials": a["sa_text"]}
    for role in ("member", "viewer", "debug_session_creator", "vault_admin", "cp_admin"):
        _token, bearer[role] = tokens.personal_access_token_create(user=users[role], organization=a["org"], name="t")
    return bearer


@pytest.mark.parametrize("operation_id,method,path", operations())
def test_api_isolation(operation_id, method, path, world, callers):
    allowed, body = RULES[operation_id]
    client = Client()
    if operation_id == "get-blob":  # a blob of A's to read
        client.put(path_for(path, world["a"]), b"blob bytes", content_type="application/octet-stream",
                   headers={"Authorization": f"Bearer {world['a']['dp_text']}"})
    failures = []
    for caller in CALLERS:
        tenant = world["a"]
        own = world["b"] if caller in ("other_org_admin", "dp_b") else world["a"]
        payload = (json.dumps(body).replace("{own_key_arn}", own["key_arn"]).replace("{trace_id}", tenant["trace_id"])
                   if body is not None else None)
        headers = {"Authorization": f"Bearer {callers[caller]}"} if callers[caller] else {}
        with transaction.atomic():
            if operation_id == "put-blob":
                response = client.put(path_for(path, tenant), b"blob", content_type="application/octet-stream",
                                      headers=headers)
            else:
                response = client.generic(method, path_for(path, tenant), payload or "",
                                          content_type="application/json", headers=headers)
            transaction.set_rollback(True)
        status = response.status_code
        got = "denied" if status in (401, 403, 404) else "ok" if status < 300 or status in (400, 409, 422) else f"{status}"
        expected = "ok" if caller in allowed else "denied"
        if got != expected:
            failures.append(f"{caller}: expected {expected}, got {status} {response.content[:200]!r}")
        if status >= 400 and not response["Content-Type"].startswith("application/problem+json"):
            failures.append(f"{caller}: {status} is not problem+json ({response['Content-Type']})")
        if caller in ("other_org_admin", "dp_b") and world["a"]["key_arn"].encode() in response.content:
            failures.append(f"{caller}: response shows organization A's key ARN")
    assert not failures, f"{method} {path}:\n" + "\n".join(failures)


# --- blob plaintext: the uploader's scope only (issue 12, point 4; debugger/blobs.py) -----------------------

# Blobs planted in each organization by tests/hardening/conftest.py, both carrying the tenant's marker.
BLOB_PLAINTEXT_READERS = {
    "dp-blob": {"dp_a", "debug_session_creator", "cp_admin", "org_admin"},  # stored by A's data plane
    "person-blob": {"org_admin"},  # stored with the org admin's PAT: the organization's `*` plaintext roles
}
PLAINTEXT_CALLERS = CALLERS + ["org_admin_read_only", "invited_viewer", "cp_creator_elsewhere", "dp_sibling"]


@pytest.mark.parametrize("blob_id", sorted(BLOB_PLAINTEXT_READERS))
def test_blob_plaintext_only_for_the_uploaders_scope(blob_id, world, callers):
    a, users = world["a"], world["users"]
    bearer = {**callers, "dp_sibling": a["sibling_dp_text"]}
    for role in ("org_admin_read_only", "invited_viewer", "cp_creator_elsewhere"):
        _token, bearer[role] = tokens.personal_access_token_create(user=users[role], organization=a["org"], name="t")
    failures = []
    for caller in PLAINTEXT_CALLERS:
        headers = {"Authorization": f"Bearer {bearer[caller]}"} if bearer[caller] else {}
        response = Client().get(f"/api/us/v0/blobs/{blob_id}", headers=headers)
        readable = caller in BLOB_PLAINTEXT_READERS[blob_id]
        if (a["marker"].encode() in response.content) is not readable:
            failures.append(f"{caller}: plaintext {'missing' if readable else 'shown'} ({response.status_code})")
        elif readable and (response["Content-Type"], response["Content-Disposition"],
                           response["X-Content-Type-Options"]) != ("application/octet-stream", "attachment", "nosniff"):
            failures.append(f"{caller}: served as {response['Content-Type']}, not an opaque attachment")
        elif not readable and response.status_code not in (200, 401, 404):  # 200: B's own blob of that id
            failures.append(f"{caller}: {response.status_code}")
    assert not failures, f"GET /v0/blobs/{blob_id}:\n" + "\n".join(failures)
