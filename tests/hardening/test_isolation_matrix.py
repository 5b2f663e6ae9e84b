"""Isolation matrix: every page URL × every role, with a second organization's objects planted everywhere.

The URL patterns are enumerated from the resolver, so a new view is covered automatically: a URL name
without a rule in RULES fails `test_every_url_has_a_rule`. Each role's request runs in a savepoint that
is rolled back, so an allowed destructive request does not change what the next role sees.

Plaintext: on no URL, for no role, does a body carry a planted vault secret value, or another organization's
Debugger plaintext (payload, log, blob marker); A's Debugger plaintext appears only on the decrypting pages,
for the plaintext roles of A's control plane (DECRYPTING_PAGES, PLAINTEXT_READERS).

Outcomes: "ok" = not 401/403/404 and not a redirect to the login page (a form answering 400/422 to an
empty POST is allowed: the caller got past the permission check); "denied" = 403 or 404.
Anonymous callers always get the login redirect. The JSON APIs have their own matrix in
tests/hardening/test_api_isolation.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

pytestmark = pytest.mark.django_db

# The password-reset pages are reached from the emailed link, signed for one user (test_operator_console follows it).
# The invitation page is reached from the emailed link (tests/konnect_admin/test_invitations.py follows it).
PUBLIC = {"login", "logout", "password_reset", "password_reset_sent", "password_reset_confirm", "password_reset_complete",
          "invitation_accept"}
# invited_viewer: a Viewer of organization B, invited into A and made a viewer of A's control plane.
# cp_creator_elsewhere: a Control Plane Creator on `*` in A, who created a control plane, not A's.
ROLES = ["anonymous", "member", "viewer", "debug_session_creator", "vault_admin", "cp_admin", "org_admin_read_only",
         "org_admin", "other_org_admin", "org_admin_with_foreign_ids", "invited_viewer", "cp_creator_elsewhere"]
EVERY_MEMBER = set(ROLES) - {"anonymous"}
CP_READERS = {"viewer", "debug_session_creator", "vault_admin", "cp_admin", "org_admin_read_only", "org_admin",
              "invited_viewer"}
DEBUG_CREATORS = {"debug_session_creator", "cp_admin", "org_admin"}
PLAINTEXT_READERS = {"debug_session_creator", "cp_admin", "org_admin"}  # DESIGN.md §2
VAULT_READERS = {"viewer", "vault_admin", "cp_admin", "org_admin_read_only", "org_admin", "invited_viewer"}
VAULT_WRITERS = {"vault_admin", "cp_admin", "org_admin"}
CP_ADMINS = {"cp_admin", "org_admin"}
ORG_READERS = {"org_admin_read_only", "org_admin", "other_org_admin", "org_admin_with_foreign_ids"}
ORG_ADMINS = {"org_admin", "other_org_admin", "org_admin_with_foreign_ids"}
KEY_ADMIN = {"org_admin"}
KEY_READERS = {"org_admin_read_only", "org_admin"}


@dataclass(frozen=True)
class Rule:
    method: str
    allowed: set[str]
    args: tuple[str, ...] = ()  # names of world objects, in URL order
    data: dict = field(default_factory=dict)


RULES: dict[str, Rule] = {
    # organization-level pages (no object in the URL): another org's admin sees their own org
    "dashboard": Rule("GET", EVERY_MEMBER),
    "organization_switch": Rule("POST", EVERY_MEMBER),
    "control_plane_list": Rule("GET", EVERY_MEMBER),
    "control_plane_create": Rule("GET", {"org_admin", "other_org_admin", "org_admin_with_foreign_ids",
                                         "cp_creator_elsewhere"}),
    "access_token_list": Rule("GET", EVERY_MEMBER),
    "access_token_create": Rule("POST", EVERY_MEMBER),
    "member_list": Rule("GET", ORG_READERS),
    "role_assign": Rule("POST", ORG_ADMINS),
    "team_membership": Rule("POST", ORG_ADMINS),
    "invitation_create": Rule("POST", ORG_ADMINS, data={"emails": "someone@new.test"}),
    "audit_log": Rule("GET", ORG_READERS),
    "encryption_key_list": Rule("GET", ORG_READERS),
    "encryption_key_link": Rule("GET", ORG_ADMINS),
    # objects of organization A
    "control_plane_detail": Rule("GET", CP_READERS, ("cp",)),
    "data_plane_token_create": Rule("POST", CP_ADMINS, ("cp",), {"name": "dp"}),
    "data_plane_token_revoke": Rule("POST", CP_ADMINS, ("cp", "dp_token")),
    "access_token_revoke": Rule("POST", {"org_admin"}, ("pat",)),
    "role_revoke": Rule("POST", {"org_admin"}, ("assignment",)),
    "member_remove": Rule("POST", {"org_admin"}, ("membership",)),
    "invitation_resend": Rule("POST", {"org_admin"}, ("invitation",)),
    "invitation_revoke": Rule("POST", {"org_admin"}, ("invitation",)),
    "encryption_key_detail": Rule("GET", KEY_READERS, ("key",)),
    "encryption_key_check": Rule("POST", KEY_ADMIN, ("key",)),
    "encryption_key_unlink": Rule("GET", KEY_ADMIN, ("key",)),
    "encryption_key_replace": Rule("GET", KEY_ADMIN, ("key",)),
    "rewrap_job_detail": Rule("GET", KEY_READERS, ("job",)),
    "rewrap_job_list": Rule("GET", ORG_READERS),  # each admin sees their own organization's jobs
    "encryption_key_replacements": Rule("GET", KEY_READERS, ("key",)),
    "rewrap_job_resume": Rule("POST", KEY_ADMIN, ("job",)),
    "debug_session_list": Rule("GET", CP_READERS, ("cp",)),
    "debug_session_create": Rule("GET", DEBUG_CREATORS, ("cp",)),
    "debug_session_detail": Rule("GET", CP_READERS, ("cp", "session")),
    "debug_session_logs": Rule("GET", CP_READERS, ("cp", "session")),
    "debug_session_cancel": Rule("POST", DEBUG_CREATORS, ("cp", "session")),
    "debug_session_delete": Rule("GET", DEBUG_CREATORS, ("cp", "session")),
    "debug_trace_detail": Rule("GET", CP_READERS, ("cp", "session", "trace_id")),
    "debug_payload_panel": Rule("GET", CP_READERS, ("cp", "session", "trace_id", "payload_kind")),
    "vault_config_store_list": Rule("GET", VAULT_READERS, ("cp",)),
    "vault_config_store_create": Rule("POST", VAULT_WRITERS, ("cp",)),
    "vault_secret_list": Rule("GET", VAULT_READERS, ("cp", "store")),
    "vault_config_store_rename": Rule("POST", VAULT_WRITERS, ("cp", "store")),
    "vault_config_store_delete": Rule("GET", VAULT_WRITERS, ("cp", "store")),
    "vault_secret_create": Rule("GET", VAULT_WRITERS, ("cp", "store")),
    "vault_secret_update": Rule("GET", VAULT_WRITERS, ("cp", "store", "secret")),
    "vault_secret_delete": Rule("GET", VAULT_WRITERS, ("cp", "store", "secret")),
    "vault_secret_status": Rule("GET", VAULT_READERS, ("cp", "store", "secret")),
    "vault_entity_create": Rule("GET", VAULT_WRITERS, ("cp",)),
    "vault_entity_update": Rule("GET", VAULT_WRITERS, ("cp", "vault")),
    "vault_entity_delete": Rule("GET", VAULT_WRITERS, ("cp", "vault")),
    "vault_protect_with_cmek": Rule("GET", KEY_ADMIN, ("cp",)),
    "vault_protection_job": Rule("GET", KEY_ADMIN, ("cp", "protection_job")),
    "system_account_list": Rule("GET", ORG_ADMINS),
    "system_account_detail": Rule("GET", {"org_admin"}, ("system_account",)),
    "system_account_update": Rule("POST", {"org_admin"}, ("system_account",), {"name": "renamed"}),
    "system_account_teams": Rule("POST", {"org_admin"}, ("system_account",)),
    "system_account_role_assign": Rule("POST", {"org_admin"}, ("system_account",), {"role": "cp_viewer"}),
    "system_account_role_revoke": Rule("POST", {"org_admin"}, ("system_account", "sa_assignment")),
    "system_account_token_create": Rule("POST", {"org_admin"}, ("system_account",),
                                        {"token-name": "t", "token-expires_in_days": "90"}),
    "system_account_token_revoke": Rule("POST", {"org_admin"}, ("system_account", "sa_token")),
    "system_account_delete": Rule("GET", {"org_admin"}, ("system_account",)),
}


def page_url_names() -> list[str]:
    def walk(patterns, skip):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if not skip(str(pattern.pattern)):
                    yield from walk(pattern.url_patterns, skip)
            elif isinstance(pattern, URLPattern) and pattern.name:
                yield pattern.name

    return sorted(set(walk(get_resolver().url_patterns, lambda p: p.startswith(("api/", "platform-admin/")))))


def test_every_url_has_a_rule():
    missing = [name for name in page_url_names() if name not in RULES and name not in PUBLIC]
    assert not missing, f"views without an isolation rule (add them to RULES): {missing}"
    stale = [name for name in RULES if name not in page_url_names()]
    assert not stale, f"rules for URLs that no longer exist: {stale}"


def url_for(name: str, rule: Rule, objects: dict) -> str:
    return reverse(name, args=[objects[arg] for arg in rule.args])


def request_as(client: Client, rule: Rule, url: str, data: dict):
    with transaction.atomic():
        if rule.method == "GET":
            response = client.get(url)
        else:
            response = client.post(url, rule.data or data)
        transaction.set_rollback(True)
    return response


def outcome(response) -> str:
    if response.status_code in (401, 403, 404):
        return "denied"
    if response.status_code in (301, 302) and "/login/" in response.get("Location", ""):
        return "login"
    if response.status_code >= 500:
        return f"error {response.status_code}"
    return "ok"


@pytest.mark.parametrize("name", sorted(RULES))
def test_isolation(name, world):
    rule = RULES[name]
    failures = []
    planted = [str(world["b"]["cp_object"].name), str(world["b"]["cp"])]
    never_shown = [world["a"]["vault_value"], world["b"]["vault_value"], world["b"]["marker"]]
    for role in ROLES:
        client = Client()
        if role != "anonymous":
            client.force_login(world["users"][role])
        objects = world["b"] if role == "org_admin_with_foreign_ids" else world["a"]
        if role == "org_admin_with_foreign_ids" and not rule.args:
            objects = world["a"]
        response = request_as(client, rule, url_for(name, rule, objects), {"organization": str(world["a"]["org"].pk)})
        expected = "login" if role == "anonymous" else ("ok" if role in rule.allowed else "denied")
        if role == "org_admin_with_foreign_ids" and rule.args:
            expected = "denied"
        got = outcome(response)
        body = response.content.decode(errors="replace")
        reads_plaintext = DECRYPTING_PAGES.get(name) and role in PLAINTEXT_READERS and objects is world["a"]
        hidden = never_shown if reads_plaintext else [*never_shown, world["a"]["marker"]]
        shown = [secret for secret in hidden if secret in body]
        if shown:
            failures.append(f"{role}: response shows plaintext it may not read: {shown}")
        if got != expected:
            failures.append(f"{role}: expected {expected}, got {got} ({response.status_code})")
        elif got == "ok" and role not in ("other_org_admin",) and response.get("Content-Type", "").startswith("text/html"):
            body = response.content.decode()
            leaked = [marker for marker in planted if marker in body]
            if leaked:
                failures.append(f"{role}: response shows another organization's objects: {leaked}")
    assert not failures, f"{rule.method} {name}:\n" + "\n".join(failures)


# --- plaintext: which roles see decrypted Debugger data (issue 12, point 4) ---------------------------------

# URL name → does its own body carry the plaintext for a reader? The trace page never does (its payload
# panels load over htmx), so there the marker must be absent for everyone and the panel link present
# only for the plaintext readers.
DECRYPTING_PAGES = {"debug_session_detail": True, "debug_session_logs": True, "debug_payload_panel": True,
                    "debug_trace_detail": False}


@pytest.mark.parametrize("name", sorted(DECRYPTING_PAGES))
def test_plaintext_only_for_the_plaintext_roles_of_that_control_plane(name, world):
    rule, failures = RULES[name], []
    markers = [world["a"]["marker"], world["b"]["marker"]]
    for role in ROLES:
        client = Client()
        if role != "anonymous":
            client.force_login(world["users"][role])
        objects = world["b"] if role == "org_admin_with_foreign_ids" else world["a"]  # A's admin, B's ids
        url, panel = url_for(name, rule, objects), url_for("debug_payload_panel", RULES["debug_payload_panel"], objects)
        body = request_as(client, rule, url, {}).content.decode()
        readable = role in PLAINTEXT_READERS
        if (markers[0] in body) is not (readable and DECRYPTING_PAGES[name]) or markers[1] in body:
            failures.append(f"{role}: plaintext {'missing' if readable else 'shown'}")
        if name == "debug_trace_detail" and (panel in body) is not readable:
            failures.append(f"{role}: payload panel link {'missing' if readable else 'offered'}")
        if role in CP_READERS - PLAINTEXT_READERS and "Encrypted — your role cannot read payloads" not in body:
            failures.append(f"{role}: no 'encrypted' state")
    assert not failures, f"GET {name}:\n" + "\n".join(failures)

