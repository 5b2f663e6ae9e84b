"""`Cache-Control: no-store` on every response that can show decrypted data (issue 12, point 7).

The attack: a decrypted payload panel, trace page or request-log page — or a blob, or a resolved vault
secret — stays in a shared proxy's cache or the browser's disk cache, for the next user of the machine.

Every page URL name (from the resolver) and every API operation (from the OpenAPI documents) is classified
here: a new view fails `test_every_*_is_classified` until someone decides whether it shows decrypted data.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.hardening.test_api_isolation import operations, path_for
from tests.hardening.test_isolation_matrix import PUBLIC, RULES, page_url_names, request_as, url_for

pytestmark = pytest.mark.django_db

# Pages that show (or, to a role that may, would show) decrypted data, or vault pages: never stored.
NO_STORE_PAGES = {
    "debug_session_list", "debug_session_create", "debug_session_detail", "debug_session_logs",
    "debug_session_cancel", "debug_session_delete", "debug_trace_detail", "debug_payload_panel",
    "vault_config_store_list", "vault_config_store_create", "vault_secret_list", "vault_config_store_rename",
    "vault_config_store_delete", "vault_secret_create", "vault_secret_update", "vault_secret_delete",
    "vault_secret_status", "vault_entity_create", "vault_entity_update", "vault_entity_delete",
    "vault_protect_with_cmek", "vault_protection_job",
    "system_account_token_create",  # shows the new token's text, once
}
# Pages that never decrypt anything (metadata of organizations, keys, members, tokens, audit).
METADATA_PAGES = {
    "dashboard", "organization_switch", "password_reset_confirm", "password_reset_complete", "member_remove",
    "control_plane_list", "control_plane_create", "control_plane_detail",
    "data_plane_token_create", "data_plane_token_revoke", "access_token_list", "access_token_create",
    "access_token_revoke", "member_list", "role_assign", "role_revoke", "team_membership", "audit_log",
    "invitation_create", "invitation_resend", "invitation_revoke",
    "encryption_key_list", "encryption_key_link", "encryption_key_detail", "encryption_key_check",
    "encryption_key_unlink", "encryption_key_replace", "rewrap_job_detail", "rewrap_job_resume",
    "rewrap_job_list", "encryption_key_replacements",
    "system_account_list", "system_account_detail", "system_account_update", "system_account_teams",
    "system_account_role_assign", "system_account_role_revoke", "system_account_token_revoke",
    "system_account_delete",
}
NO_STORE_OPERATIONS = {"get-blob", "resolve-vault-references", "create-encryption-material",
                       "create-decryption-material"}
METADATA_OPERATIONS = {  # config-store secrets are write-only; ingest answers counts; CMEK answers key metadata
    "list-cmeks", "get-cmek", "put-cmek", "delete-cmek", "put-blob", "debugger_api_sessions_to_sample",
    "debugger_api_post_traces", "debugger_api_post_trace_batch", "debugger_api_post_payloads", "debugger_api_post_logs",
    "debugger_api_finish_session", "list-config-stores", "create-config-store", "get-config-store",
    "update-config-store", "delete-config-store", "list-config-store-secrets", "create-config-store-secret",
    "get-config-store-secret", "update-config-store-secret", "delete-config-store-secret",
}


def test_every_page_is_classified():
    names = set(page_url_names())
    assert not names - PUBLIC - NO_STORE_PAGES - METADATA_PAGES, "classify these pages: do they show decrypted data?"
    assert not (NO_STORE_PAGES | METADATA_PAGES) - names, "classified pages that no longer exist"
    assert not NO_STORE_PAGES & METADATA_PAGES


def test_every_api_operation_is_classified():
    ids = {operation_id for operation_id, _, _ in operations()}
    assert not ids - NO_STORE_OPERATIONS - METADATA_OPERATIONS, "classify these operations"
    assert not (NO_STORE_OPERATIONS | METADATA_OPERATIONS) - ids


@pytest.mark.parametrize("name", sorted(NO_STORE_PAGES))
def test_pages_that_may_show_decrypted_data_are_never_stored(name, world):
    rule = RULES[name]
    client = Client()
    client.force_login(world["users"]["org_admin"])
    for headers in ({}, {"HX-Request": "true"}):
        client.defaults.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
        response = request_as(client, rule, url_for(name, rule, world["a"]), {})
        assert response.status_code < 500, response.status_code
        assert "no-store" in response.get("Cache-Control", ""), (name, headers, response.status_code)


def test_the_payload_panel_that_decrypts_is_never_stored(world):
    """The page the attack is about, with plaintext actually in it."""
    rule = RULES["debug_payload_panel"]
    client = Client()
    client.force_login(world["users"]["org_admin"])
    response = client.get(url_for("debug_payload_panel", rule, world["a"]))
    assert world["a"]["marker"] in response.content.decode()
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_a_blob_and_a_resolved_secret_are_never_stored(world):
    a = world["a"]
    data_plane = Client(HTTP_AUTHORIZATION=f"Bearer {a['dp_text']}")
    paths = {operation_id: path for operation_id, _, path in operations()}
    blob_url = path_for(paths["get-blob"], a)
    assert data_plane.put(blob_url, b"blob", content_type="application/octet-stream").status_code == 202
    blob = data_plane.get(blob_url)
    assert blob.content == b"blob" and "no-store" in blob["Cache-Control"]
    resolved = data_plane.post(path_for(paths["resolve-vault-references"], a),
                               json.dumps({"references": ["{vault://alpha-vault/db-password}"]}),
                               content_type="application/json")
    assert resolved.json()["results"][0]["value"] == a["vault_value"]
    assert "no-store" in resolved["Cache-Control"]


def test_envelope_materials_are_never_stored(world):
    from tests import leaks

    a = world["a"]
    system_account = Client(HTTP_AUTHORIZATION=f"Bearer {a['sa_text']}")
    paths = {operation_id: path for operation_id, _, path in operations()}
    material = system_account.post(paths["create-encryption-material"])
    assert material.status_code == 201 and "no-store" in material["Cache-Control"]
    leaks.plant(material.json()["plaintext_data_key"])
    opened = system_account.post(paths["create-decryption-material"],
                                 json.dumps({"encrypted_data_key": material.json()["encrypted_data_key"]}),
                                 content_type="application/json")
    assert opened.json() == {"plaintext_data_key": material.json()["plaintext_data_key"]}
    assert "no-store" in opened["Cache-Control"]
