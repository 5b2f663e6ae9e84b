"""Debug session pages: list, create (htmx validation), cancel, delete with crypto-shredding, permissions."""

import pytest
from django.urls import reverse

from debugger.models import DebugSession, PayloadCapture, RequestLog, SamplingKind, SessionStatus, Trace
from encryption_keys.models import DataKey
from konnect_admin.models import AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db

VALID = {"name": "checkout 503s", "duration_seconds": "300", "sampling_kind": "expression",
         "sampling_value": 'http.method == "POST" && http.path ^= "/orders"', "max_samples": "50",
         "capture_logs": "on", "capture_request_headers": "on", "capture_response_body": "on"}


def create_url(cp):
    return reverse("debug_session_create", args=[cp.pk])


def test_pages_need_a_login(client, debug_session):
    for url in (reverse("debug_session_list", args=[debug_session.control_plane_id]),
                reverse("debug_session_detail", args=[debug_session.control_plane_id, debug_session.pk])):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_control_plane_page_has_a_debugger_section(login, org_admin, control_plane, debug_session):
    page = login(org_admin).get(reverse("control_plane_detail", args=[control_plane.pk])).content.decode()
    assert "Debugger" in page and debug_session.name in page
    assert create_url(control_plane) in page


def test_member_without_a_role_sees_no_debugger(login, org, control_plane):
    member = factories.make_role_user(org, "member")
    client = login(member)
    assert client.get(reverse("debug_session_list", args=[control_plane.pk])).status_code == 404


def test_create_a_session_full_page(login, org, org_admin, control_plane):
    response = login(org_admin).post(create_url(control_plane), VALID)
    session = DebugSession.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("debug_session_detail", args=[control_plane.pk, session.pk])
    assert (session.sampling_kind, session.sampling_value) == (SamplingKind.EXPRESSION, VALID["sampling_value"])
    assert (session.duration_seconds, session.max_samples, session.status) == (300, 50, SessionStatus.PENDING)
    assert session.capture_logs and session.capture_request_headers and not session.capture_request_body
    assert (session.retain_until - session.created_at).days == org.retention_days
    event = AuditEvent.objects.get(action="debug_session.created")
    assert (event.actor, event.target_id) == (org_admin, str(session.pk))


def test_create_with_htmx_redirects_the_client(login, org_admin, control_plane):
    response = login(org_admin).post(create_url(control_plane), VALID, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Redirect"].endswith(f"/debugger/{DebugSession.objects.get().pk}/")


@pytest.mark.parametrize(("change", "message"), [
    ({"sampling_value": "http.response.status_code == 700"}, "HTTP status codes are between 100 and 599"),
    ({"sampling_value": 'http.path ~ "^/x"'}, "regular expressions"),
    ({"sampling_value": "http.method == post"}, "quoted string"),
    ({"sampling_value": ""}, "Give the expression to sample"),
    ({"sampling_kind": "route", "sampling_value": "no spaces allowed"}, "give the id or name"),
    ({"duration_seconds": "5"}, "greater than or equal to 10"),
    ({"duration_seconds": "1801"}, "less than or equal to 1800"),
    ({"max_samples": "0"}, "greater than or equal to 1"),
])
def test_htmx_validation_returns_the_form_with_a_clear_error(login, org_admin, control_plane, change, message):
    response = login(org_admin).post(create_url(control_plane), {**VALID, **change}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    page = response.content.decode()
    assert message in page
    assert page.lstrip().startswith("<form") and "<html" not in page
    assert not DebugSession.objects.exists()


def test_invalid_form_without_htmx_is_a_full_page(login, org_admin, control_plane):
    response = login(org_admin).post(create_url(control_plane), {**VALID, "sampling_value": "nope =="})
    assert response.status_code == 400
    assert "<html" in response.content.decode() and "Invalid sampling rule" in response.content.decode()


@pytest.mark.parametrize("role", ["cp_viewer", "org_admin_read_only"])
def test_readers_read_but_cannot_create(login, org, control_plane, debug_session, role):
    client = login(factories.make_role_user(org, role))
    assert client.get(reverse("debug_session_list", args=[control_plane.pk])).status_code == 200
    assert client.get(reverse("debug_session_detail", args=[control_plane.pk, debug_session.pk])).status_code == 200
    assert client.get(create_url(control_plane)).status_code == 403
    assert client.post(create_url(control_plane), VALID).status_code == 403
    assert client.post(reverse("debug_session_delete", args=[control_plane.pk, debug_session.pk])).status_code == 403
    assert DebugSession.objects.count() == 1


@pytest.mark.parametrize("role", ["debug_session_creator", "cp_admin"])
def test_control_plane_roles_that_may_create(login, org, control_plane, role):
    user = factories.make_role_user(org, role, control_plane)
    assert login(user).post(create_url(control_plane), VALID).status_code == 302
    # … on their control plane only.
    elsewhere = factories.make_control_plane(org, name="elsewhere")
    assert login(user).get(create_url(elsewhere)).status_code == 404


def test_sessions_of_another_organization_are_404(login, org_admin, other_control_plane, other_org_admin,
                                                  make_session):
    theirs = make_session(cp=other_control_plane, actor=other_org_admin)
    client = login(org_admin)
    for url in (reverse("debug_session_list", args=[other_control_plane.pk]),
                reverse("debug_session_detail", args=[other_control_plane.pk, theirs.pk]),
                reverse("debug_session_logs", args=[other_control_plane.pk, theirs.pk]),
                reverse("debug_session_delete", args=[other_control_plane.pk, theirs.pk])):
        assert client.get(url).status_code == 404
    assert client.post(reverse("debug_session_delete", args=[other_control_plane.pk, theirs.pk])).status_code == 404
    assert DebugSession.objects.filter(pk=theirs.pk).exists()


def test_a_session_is_only_found_under_its_own_control_plane(login, org, org_admin, debug_session):
    sibling = factories.make_control_plane(org, name="sibling")
    url = reverse("debug_session_detail", args=[sibling.pk, debug_session.pk])
    assert login(org_admin).get(url).status_code == 404


def test_session_list_shows_sessions_with_their_status(login, org_admin, control_plane, make_session, ingest):
    ingest(3)
    make_session(name="second")
    response = login(org_admin).get(reverse("debug_session_list", args=[control_plane.pk]))
    page = response.content.decode()
    assert "checkout" in page and "second" in page and "3 / 100" in page
    fragment = login(org_admin).get(reverse("debug_session_list", args=[control_plane.pk]),
                                    headers={"HX-Request": "true"}).content.decode()
    assert fragment.lstrip().startswith('<div id="sessions">') and "<html" not in fragment


def test_cancel_stops_sampling(login, org_admin, debug_session, dp_client):
    url = reverse("debug_session_cancel", args=[debug_session.control_plane_id, debug_session.pk])
    assert login(org_admin).get(url).status_code == 405
    assert login(org_admin).post(url).status_code == 302
    debug_session.refresh_from_db()
    assert debug_session.status == SessionStatus.CANCELLED
    assert dp_client.get("/api/us/v1/debugger/sessions").json()["data"] == []
    assert AuditEvent.objects.filter(action="debug_session.cancelled").count() == 1


def test_delete_asks_first_then_shreds_the_keys_before_deleting(login, org_admin, debug_session, ingest):
    ingest(2)
    cp, pk = debug_session.control_plane_id, debug_session.pk
    client = login(org_admin)
    confirm = client.get(reverse("debug_session_delete", args=[cp, pk]))
    assert confirm.status_code == 200
    assert "2</strong> data key(s)" in confirm.content.decode() and "2 trace(s)" in confirm.content.decode()
    keys = list(DataKey.objects.filter(scope_ref=f"{cp}/{pk}"))
    assert len(keys) == 2 and all(key.wrapped for key in keys)
    response = client.post(reverse("debug_session_delete", args=[cp, pk]))
    assert response.status_code == 302 and response["Location"] == reverse("debug_session_list", args=[cp])
    assert not DebugSession.objects.exists()
    assert (Trace.objects.count(), PayloadCapture.objects.count(), RequestLog.objects.count()) == (0, 0, 0)
    for key in DataKey.objects.filter(scope_ref=f"{cp}/{pk}"):
        assert key.shredded_at is not None and key.wrapped is None
    event = AuditEvent.objects.get(action="debug_session.deleted")
    assert event.details["data_keys_shredded"] == 2 and event.details["traces"] == 2


def test_delete_with_htmx_redirects_the_client(login, org_admin, debug_session):
    response = login(org_admin).post(
        reverse("debug_session_delete", args=[debug_session.control_plane_id, debug_session.pk]),
        headers={"HX-Request": "true"})
    assert response["HX-Redirect"] == reverse("debug_session_list", args=[debug_session.control_plane_id])
