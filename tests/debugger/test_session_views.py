"""Debug session pages: list, create (htmx validation), cancel, delete with crypto-shredding, permissions, and the
live traces table (the page polls while the session samples)."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from debugger.models import DebugSession, PayloadCapture, RequestLog, SamplingKind, SessionStatus, Trace
from debugger.tasks import expire_sessions
from encryption_keys.models import DataKey
from konnect_admin.models import AuditEvent
from tests import factories
from tests.debugger.conftest import (
    BODY_SECRET,
    HEADER_SECRET,
    LOG_SECRET,
    PATH,
    QUERY_SECRET,
    fresh_reader,
    post_traces,
    trace_json,
)

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


# --- the live traces table (issue 13, point 4) ------------------------------------------------------------

POLL = 'hx-trigger="every 2s"'
PROGRESS = re.compile(r"""hx-headers='\{"X-Session-Progress": "([^"]+)"\}'""")


def detail_url(session):
    return reverse("debug_session_detail", args=[session.control_plane_id, session.pk])


def poll(client, session, progress=None, query=None):
    """What the page's poller sends: an htmx GET of the page's own URL with the progress it shows."""
    headers = {"HX-Request": "true"} | ({"X-Session-Progress": progress} if progress else {})
    return client.get(detail_url(session), query or {}, headers=headers)


def progress_of(fragment: str) -> str:
    return PROGRESS.search(fragment).group(1)


def badge(fragment: str) -> str:
    return re.search(r'<span class="badge debugger-status-[a-z_]+">([^<]+)</span>', fragment).group(1)


def test_an_active_session_polls_and_offers_a_refresh_link(login, org_admin, debug_session):
    url = detail_url(debug_session)
    page = login(org_admin).get(url).content.decode()
    assert POLL in page and f'hx-get="{url}"' in page
    # A filter change waits for a poll in flight (its table is swapped in last), and no poll starts while the
    # filter's request runs: a stale poll cannot put the unfiltered table back.
    assert 'hx-sync="#traces:queue last"' in page and 'hx-sync="closest #traces:drop"' in page
    assert f'<a id="traces-refresh" href="{url}">Refresh</a>' in page  # without JavaScript: a plain link
    assert page.count('id="session-head"') == 1 and "hx-swap-oob" not in page  # the full page has no out-of-band copy
    fragment = poll(login(org_admin), debug_session).content.decode()
    assert fragment.lstrip().startswith('<div id="traces">') and "<html" not in fragment
    assert POLL in fragment and progress_of(fragment) == "pending:0:0"
    assert '<div class="page-head" id="session-head" hx-swap-oob="true">' in fragment
    assert '<section class="card" id="session-facts" hx-swap-oob="true">' in fragment


@pytest.mark.parametrize("end", ["cancelled", "completed", "timed_out", "timed_out_before_the_sweep"])
def test_an_ended_session_stops_polling(login, org_admin, debug_session, dp_client, end):
    if end == "cancelled":
        login(org_admin).post(reverse("debug_session_cancel", args=[debug_session.control_plane_id, debug_session.pk]))
    elif end == "completed":
        assert dp_client.post(f"/api/us/v1/debugger/sessions/{debug_session.pk}/done").status_code == 200
    else:
        DebugSession.objects.filter(pk=debug_session.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
        if end == "timed_out":
            expire_sessions.enqueue()  # the scheduled sweep (immediate backend in tests)
    expected = {"cancelled": "Cancelled", "completed": "Completed"}.get(end, "Timed out")
    for headers in ({}, {"HX-Request": "true", "X-Session-Progress": "pending:0:0"}):
        response = login(org_admin).get(detail_url(debug_session), headers=headers)
        page = response.content.decode()
        assert response.status_code == 200
        assert badge(page) == expected
        assert POLL not in page and "X-Session-Progress" not in page and "traces-refresh" not in page
        assert "Stop sampling" not in page


def test_a_trace_ingested_between_two_polls_appears_in_the_second(login, org_admin, debug_session, dp_client):
    client = login(org_admin)
    first = poll(client, debug_session).content.decode()
    progress = progress_of(first)
    unchanged = poll(client, debug_session, progress)
    assert unchanged.status_code == 204 and unchanged.content == b""  # nothing new: no swap
    assert "no-store" in unchanged["Cache-Control"]

    trace = trace_json(payloads=False, logs=False)
    assert post_traces(dp_client, debug_session, [trace]).status_code == 202
    second = poll(client, debug_session, progress)
    page = second.content.decode()
    assert second.status_code == 200 and trace["trace_id"] not in first
    assert f'id="trace-{trace["trace_id"]}"' in page
    assert progress_of(page) == "in_progress:1:0" and "1 of at most 100" in page
    assert poll(client, debug_session, progress_of(page)).status_code == 204

    # Payloads arriving after their trace change the row too (its path and payload count).
    late = {"payloads": [{"trace_id": trace["trace_id"], "kind": "client_request", "url": f"https://api.test{PATH}",
                          "headers": {"x-secret": HEADER_SECRET}}]}
    assert dp_client.post(f"/api/us/v1/debugger/sessions/{debug_session.pk}/payloads", late,
                          content_type="application/json").status_code == 202
    third = poll(client, debug_session, progress_of(page)).content.decode()
    assert progress_of(third) == "in_progress:1:1" and f"<code>{PATH}</code>" in third and HEADER_SECRET not in third


def test_new_traces_come_first_and_filters_and_pages_are_kept(login, org_admin, debug_session, dp_client):
    older = trace_json(status=503)
    older["start_time"] = "2026-01-01T00:00:00+00:00"
    post_traces(dp_client, debug_session, [older, trace_json(status=201)])
    query = {"status": "5xx", "page": "1"}
    client = login(org_admin)
    first = poll(client, debug_session, query=query).content.decode()
    assert f'hx-get="{detail_url(debug_session)}?status=5xx&amp;page=1"' in first  # the poll keeps the filters
    newer = trace_json(status=502)
    post_traces(dp_client, debug_session, [newer, trace_json(status=200)])
    second = poll(client, debug_session, progress_of(first), query).content.decode()
    ids = re.findall(r'id="trace-([0-9a-f]{32})"', second)
    assert ids == [newer["trace_id"], older["trace_id"]]  # newest first, the 2xx traces filtered out


def test_the_status_change_shows_pending_then_in_progress_then_completed(login, org_admin, debug_session, dp_client):
    client = login(org_admin)
    fragment = poll(client, debug_session).content.decode()
    assert badge(fragment) == "Pending" and "not started by a data plane yet" in fragment
    assert dp_client.get("/api/us/v1/debugger/sessions").status_code == 200  # a data plane picks it up
    fragment = poll(client, debug_session, progress_of(fragment)).content.decode()
    assert badge(fragment) == "In progress" and "not started by a data plane yet" not in fragment
    assert "Stop sampling" in fragment and POLL in fragment
    assert dp_client.post(f"/api/us/v1/debugger/sessions/{debug_session.pk}/done").status_code == 200
    fragment = poll(client, debug_session, progress_of(fragment)).content.decode()
    assert badge(fragment) == "Completed" and POLL not in fragment and "Stop sampling" not in fragment


def test_an_unchanged_poll_reads_counts_only_and_decrypts_nothing(login, org_admin, debug_session, ingest, kms_calls):
    ingest(3)
    client = login(org_admin)
    progress = progress_of(poll(client, debug_session).content.decode())
    fresh_reader()  # no data key cached: a reveal would have to ask the KMS
    decrypts = kms_calls(operation="Decrypt").count()
    with CaptureQueriesContext(connection) as queries:
        assert poll(client, debug_session, progress).status_code == 204
    sql = [query["sql"].lower() for query in queries]
    assert not [q for q in sql if "datakey" in q], sql
    assert [q for q in sql if "debugger_payloadcapture" in q] == [q for q in sql if "debugger_payloadcapture" in q
                                                                  and "count(" in q]
    assert not [q for q in sql if '"url"' in q or '"body"' in q or '"headers"' in q]
    assert len(sql) <= 10, sql  # login, organization, roles, control plane, session and its counts
    assert kms_calls(operation="Decrypt").count() == decrypts
    # The check can fail: a poll that renders the table reveals the request paths (one Decrypt, one data key).
    assert poll(client, debug_session).status_code == 200
    assert kms_calls(operation="Decrypt").count() == decrypts + 1


@pytest.mark.parametrize("role", ["cp_viewer", "org_admin"])
def test_the_poll_shows_no_payload_plaintext(login, org, control_plane, debug_session, ingest, role):
    client = login(factories.make_role_user(org, role, control_plane if role == "cp_viewer" else None))
    first = poll(client, debug_session).content.decode()
    ingest(2)
    fragment = poll(client, debug_session, progress_of(first)).content.decode()
    assert fragment.count('id="trace-') == 2
    for secret in (BODY_SECRET, HEADER_SECRET, QUERY_SECRET, LOG_SECRET):
        assert secret not in fragment
    assert (f"<code>{PATH}</code>" in fragment) == (role == "org_admin")  # a viewer sees the encrypted state


def test_the_poll_is_scoped_like_the_page(login, org, org_admin, other_org_admin, debug_session, ingest):
    ingest(1)
    progress = progress_of(poll(login(org_admin), debug_session).content.decode())
    for user in (other_org_admin, factories.make_role_user(org, "member")):
        client = login(user)
        for sent in (None, progress, "garbage"):
            assert poll(client, debug_session, sent).status_code == 404
    sibling = factories.make_control_plane(org, name="sibling")
    url = reverse("debug_session_detail", args=[sibling.pk, debug_session.pk])
    headers = {"HX-Request": "true", "X-Session-Progress": progress}
    assert login(org_admin).get(url, headers=headers).status_code == 404
