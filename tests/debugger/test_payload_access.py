"""Least privilege for Debugger plaintext (issue 12, point 4; DESIGN.md §2).

The attack: every control-plane role — a Viewer, a Vault Admin, the read-only Organization Admin, a Viewer
of another organization invited as a member — opened the payload panel and read request bodies and
`Authorization` headers. Now they see the metadata and the "encrypted" state, and no data key is even
unwrapped on their behalf (no KMS Decrypt).
"""

import pytest
from django.urls import reverse

from konnect_admin import services as platform
from konnect_admin.models import Role
from tests import factories
from tests.debugger.conftest import BODY_SECRET, HEADER_SECRET, LOG_SECRET, PATH, QUERY_SECRET, fresh_reader

pytestmark = pytest.mark.django_db
SECRETS = (BODY_SECRET, HEADER_SECRET, QUERY_SECRET, LOG_SECRET, PATH)
ENCRYPTED = "Encrypted — your role cannot read payloads"


def urls(session, trace_id) -> dict[str, str]:
    cp, pk = session.control_plane_id, session.pk
    return {
        "traces": reverse("debug_session_detail", args=[cp, pk]),
        "logs": reverse("debug_session_logs", args=[cp, pk]),
        "trace": reverse("debug_trace_detail", args=[cp, pk, trace_id]),
        "panel": reverse("debug_payload_panel", args=[cp, pk, trace_id, "client_request"]),
    }


def metadata_reader(name, org, other_org, control_plane):
    if name == "invited_viewer_of_another_org":
        user = factories.make_role_user(other_org, "cp_viewer")
        platform.member_add(organization=org, user=user, actor=None)
        factories.grant(user, org, Role.CP_VIEWER, control_plane)
        return user
    return factories.make_role_user(org, name, None if name == "org_admin_read_only" else control_plane)


@pytest.mark.parametrize("role", ["cp_viewer", "vault_admin", "org_admin_read_only", "cp_creator",
                                  "invited_viewer_of_another_org"])
def test_roles_without_plaintext_see_metadata_and_the_encrypted_state(login, org, other_org, control_plane,
                                                                      debug_session, ingest, kms_calls, role):
    trace_id = ingest(1)[0]
    client = login(metadata_reader(role, org, other_org, control_plane))
    fresh_reader()
    decrypts = kms_calls(operation="Decrypt").count()
    for name, url in urls(debug_session, trace_id).items():
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers)
            page = response.content.decode()
            assert response.status_code == 200, (name, headers)
            assert not [secret for secret in SECRETS if secret in page], (name, headers)
            assert "no-store" in response["Cache-Control"], name
        assert ENCRYPTED in client.get(url).content.decode(), name
    traces = client.get(urls(debug_session, trace_id)["traces"]).content.decode()
    assert trace_id in traces and "route-orders" in traces  # the metadata is still there
    trace = client.get(urls(debug_session, trace_id)["trace"]).content.decode()
    assert "kong.phase.access" in trace and urls(debug_session, trace_id)["panel"] not in trace  # nothing to open
    assert kms_calls(operation="Decrypt").count() == decrypts  # not a single data key unwrapped for them


@pytest.mark.parametrize("role", ["org_admin", "cp_admin", "debug_session_creator", "debug_session_creator_star"])
def test_plaintext_roles_of_the_control_plane_read_payloads_and_logs(login, org, control_plane, debug_session,
                                                                     ingest, role):
    trace_id = ingest(1)[0]
    if role == "debug_session_creator_star":
        user = factories.make_role_user(org, "debug_session_creator")
    else:
        user = factories.make_role_user(org, role, None if role == "org_admin" else control_plane)
    client = login(user)
    pages = urls(debug_session, trace_id)
    panel = client.get(pages["panel"]).content.decode()
    assert BODY_SECRET in panel and HEADER_SECRET in panel and QUERY_SECRET in panel and ENCRYPTED not in panel
    assert LOG_SECRET in client.get(pages["logs"]).content.decode()
    assert PATH in client.get(pages["traces"]).content.decode()


def test_a_role_on_another_control_plane_reads_nothing_here(login, org, control_plane, debug_session, ingest):
    trace_id = ingest(1)[0]
    elsewhere = factories.make_control_plane(org, name="billing")
    client = login(factories.make_role_user(org, "cp_admin", elsewhere))
    for url in urls(debug_session, trace_id).values():
        response = client.get(url)
        assert response.status_code == 404 and BODY_SECRET not in response.content.decode()


def test_a_creator_sees_its_own_control_planes_debugger_but_not_others(login, org, control_plane, debug_session,
                                                                        ingest):
    trace_id = ingest(1)[0]
    creator = factories.make_role_user(org, "cp_creator")
    client = login(creator)
    assert client.get(urls(debug_session, trace_id)["panel"]).status_code == 404
    listing = client.get(reverse("control_plane_list")).content.decode()
    assert control_plane.name not in listing
    own = platform.control_plane_create(organization=org, actor=creator, name="creators-own", region="us")
    listing = client.get(reverse("control_plane_list")).content.decode()
    assert own.name in listing and control_plane.name not in listing
