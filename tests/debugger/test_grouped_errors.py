"""Issue 18: one error card per trace when every payload fails alike, unreadable log lines folded into one row
per reason, logs newest-first, and advice for the person reading (an Organization Admin fixes the key, a Debug
Session Creator is told whom to ask). Real ingest, the local KMS, keys disabled the way a customer would."""

import base64
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.urls import reverse

from debugger import selectors
from debugger.models import PayloadCapture
from devtools import local_kms
from encryption_keys.keyring import Revealed
from encryption_keys.models import EncryptionKey
from tests import factories
from tests.debugger.conftest import BODY_SECRET, LOG_SECRET, fresh_reader, post_traces, trace_json

pytestmark = pytest.mark.django_db

KINDS = ["client_request", "upstream_request", "upstream_response", "client_response"]


def four_payload_trace(**options) -> dict:
    trace = trace_json(**options)
    body = base64.b64encode(b'{"ok": true}').decode()
    trace["payloads"] += [
        {"kind": "upstream_request", "url": "http://orders.internal/orders", "headers": {"x-a": "1"},
         "body_base64": body},
        {"kind": "upstream_response", "headers": {"content-type": "application/json"}, "body_base64": body},
    ]
    return trace


@pytest.fixture
def trace_id(linked_cmek, dp_client, debug_session):
    trace = four_payload_trace()
    assert post_traces(dp_client, debug_session, [trace]).status_code == 202
    assert PayloadCapture.objects.filter(trace__trace_id=trace["trace_id"]).count() == 4
    return trace["trace_id"]


@pytest.fixture
def key_disabled(linked_cmek):
    local_kms.disable_key(linked_cmek)
    fresh_reader()
    yield linked_cmek
    local_kms.enable_key(linked_cmek)


def trace_url(session, trace_id):
    return reverse("debug_trace_detail", args=[session.control_plane_id, session.pk, trace_id])


def panel_url(session, trace_id, kind):
    return reverse("debug_payload_panel", args=[session.control_plane_id, session.pk, trace_id, kind])


def logs_url(session):
    return reverse("debug_session_logs", args=[session.control_plane_id, session.pk])


def garble_header(capture: PayloadCapture) -> None:
    """Break the envelope header of every value of a capture: an integrity error, found before any key is used."""
    updates = {}
    for field in ("url", "headers", "body"):
        value = getattr(capture, field)
        if value is not None:
            updates[field] = b"\x00" + bytes(value.envelope)[1:]
    columns = ", ".join(f"{field} = %s" for field in updates)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE debugger_payloadcapture SET {columns} WHERE id = %s",  # noqa: S608
                       [*updates.values(), capture.pk.hex if connection.vendor == "sqlite" else capture.pk])


def test_four_payloads_failing_alike_show_one_card(login, org_admin, debug_session, trace_id, key_disabled):
    page = login(org_admin).get(trace_url(debug_session, trace_id)).content.decode()
    assert page.count('data-code="key_disabled"') == 1
    assert 'class="error-card key-error-card debugger-error-card debugger-trace-error-card' in page
    # Beneath it, one short line per payload, each linking to its panel (which works without JavaScript).
    for kind, label in zip(KINDS, ["Client request", "Upstream request", "Upstream response", "Client response"],
                           strict=True):
        assert f'<a href="{panel_url(debug_session, trace_id, kind)}">{label}</a> — key disabled' in page
    assert 'hx-trigger="load"' not in page  # no panel is fetched only to repeat the card
    assert "aws kms enable-key" in page and key_disabled in page
    assert BODY_SECRET not in page


def test_payloads_failing_differently_keep_their_own_cards(login, org_admin, debug_session, trace_id, key_disabled):
    garble_header(PayloadCapture.objects.get(trace__trace_id=trace_id, kind="client_request"))
    client = login(org_admin)
    page = client.get(trace_url(debug_session, trace_id)).content.decode()
    assert "debugger-trace-error-card" not in page and "data-code=" not in page
    for kind in KINDS:  # each panel loads and shows its own card
        assert f'hx-get="{panel_url(debug_session, trace_id, kind)}" hx-trigger="load"' in page
    codes = {kind: client.get(panel_url(debug_session, trace_id, kind), headers={"HX-Request": "true"})
             .content.decode().split('data-code="', 1)[1].split('"', 1)[0] for kind in KINDS}
    assert codes == {"client_request": "integrity", "upstream_request": "key_disabled",
                     "upstream_response": "key_disabled", "client_response": "key_disabled"}


def test_a_readable_trace_loads_its_panels(login, org_admin, debug_session, trace_id):
    page = login(org_admin).get(trace_url(debug_session, trace_id)).content.decode()
    assert "data-code=" not in page and page.count('hx-trigger="load"') == 4
    assert BODY_SECRET not in page  # the page itself never carries plaintext


def test_advice_for_the_reader_on_the_trace_card_and_the_log_group(login, org, org_admin, control_plane,
                                                                   debug_session, trace_id, key_disabled):
    creator = factories.make_role_user(org, "debug_session_creator", control_plane)
    # The health check has seen it too: the organization's banner is on every page, advice included.
    EncryptionKey.objects.filter(key_ref=key_disabled).update(status="disabled")
    pages = {}
    for name, user in (("admin", org_admin), ("creator", creator)):
        client = login(user)
        pages[name] = client.get(trace_url(debug_session, trace_id)).content.decode() + client.get(
            logs_url(debug_session)).content.decode()
        fresh_reader()
    # Card and log group on each page, and the banner on both pages.
    assert pages["admin"].count("aws kms enable-key") == 4 and "Ask an Organization Admin" not in pages["admin"]
    assert pages["creator"].count("Ask an Organization Admin") == 4
    assert "Re-enable the key in AWS KMS" not in pages["creator"] and "aws kms enable-key" not in pages["creator"]
    assert "See the organization’s encryption keys" in pages["admin"]
    assert "See the organization’s encryption keys" not in pages["creator"]


def test_log_lines_unreadable_alike_are_one_row(login, org_admin, debug_session, dp_client, linked_cmek):
    traces = [trace_json(payloads=False) for _ in range(3)]
    assert post_traces(dp_client, debug_session, traces).status_code == 202
    local_kms.disable_key(linked_cmek)
    fresh_reader()
    try:
        page = login(org_admin).get(logs_url(debug_session)).content.decode()
    finally:
        local_kms.enable_key(linked_cmek)
    assert "6 log lines unreadable: key disabled" in page
    assert page.count('class="debugger-log-group"') == 1 and page.count("<tr") == 2  # header + the group
    assert LOG_SECRET not in page


def test_log_rows_fold_runs_of_one_code():
    def log(n):
        return SimpleNamespace(time=datetime(2026, 1, 1, tzinfo=UTC) - timedelta(seconds=n))

    disabled, integrity = SimpleNamespace(code="key_disabled"), SimpleNamespace(code="integrity")
    logs = [log(n) for n in range(6)]
    revealed = [(logs[0], Revealed(value="ok")), (logs[1], Revealed(error=disabled)),
                (logs[2], Revealed(error=disabled)), (logs[3], Revealed(error=integrity)),
                (logs[4], Revealed(error=disabled)), (logs[5], None)]
    rows = selectors.log_rows(revealed)
    shapes = [(row.error.code, row.count) if isinstance(row, selectors.LogGroup) else "line" for row, _ in rows]
    assert shapes == ["line", ("key_disabled", 2), ("integrity", 1), ("key_disabled", 1), "line"]
    assert rows[1][0].newest == logs[1].time and rows[1][0].oldest == logs[2].time


def test_logs_are_newest_first(login, org_admin, debug_session, dp_client):
    start = datetime.now(UTC)
    trace = trace_json(payloads=False)
    trace["logs"] = [{"time": (start + timedelta(seconds=n)).isoformat(), "level": "info", "message": f"line-{n}"}
                     for n in (1, 0, 2)]
    assert post_traces(dp_client, debug_session, [trace]).status_code == 202
    page = login(org_admin).get(logs_url(debug_session)).content.decode()
    assert page.index("line-2") < page.index("line-1") < page.index("line-0")


def test_routes_services_and_consumers_show_their_names_where_spans_carry_them(login, org_admin, debug_session,
                                                                               dp_client):
    named, bare = trace_json(route_id="9f1c2d3e-route"), trace_json(route_id="7a6b5c4d-route")
    named["spans"][1]["attributes"].update({"kong.route.name": "orders-create", "service.name": "orders",
                                            "consumer.username": "ada"})
    assert post_traces(dp_client, debug_session, [named, bare]).status_code == 202
    client = login(org_admin)
    table = client.get(reverse("debug_session_detail", args=[debug_session.control_plane_id,
                                                             debug_session.pk])).content.decode()
    assert '<span class="debugger-entity" title="id 9f1c2d3e-route">orders-create</span>' in table
    assert '<span class="debugger-entity" title="id svc-orders">orders</span>' in table
    # Only ids: the whole id in the text (selecting copies it) and the title, shortened by CSS.
    assert '<code class="debugger-id debugger-short-id" title="7a6b5c4d-route">7a6b5c4d-route</code>' in table
    page = client.get(trace_url(debug_session, named["trace_id"])).content.decode()
    assert 'title="id consumer-1">ada</span> <code class="debugger-id" id="trace-consumer-id">consumer-1</code>' in page
    assert 'data-copy-target="trace-route-id"' in page


def test_the_traces_table_says_once_why_paths_are_unreadable_and_what_the_reader_can_do(
        login, org, org_admin, control_plane, debug_session, trace_id, ingest, linked_cmek):
    ingest(2)
    local_kms.disable_key(linked_cmek)
    fresh_reader()
    creator = factories.make_role_user(org, "debug_session_creator", control_plane)
    url = reverse("debug_session_detail", args=[debug_session.control_plane_id, debug_session.pk])
    try:
        admin_page = login(org_admin).get(url).content.decode()
        fresh_reader()
        creator_page = login(creator).get(url).content.decode()
    finally:
        local_kms.enable_key(linked_cmek)
    for page in (admin_page, creator_page):
        assert page.count('class="error-card key-error-card debugger-error-card debugger-rows-error"') == 1
        assert "3 request paths on this page unreadable: key disabled" in page
    assert "aws kms enable-key" in admin_page and "Ask an Organization Admin" not in admin_page
    assert "Ask an Organization Admin" in creator_page and "AWS KMS" not in creator_page


def test_a_group_at_the_end_of_a_page_says_the_next_page_holds_more(login, org_admin, debug_session, dp_client,
                                                                     linked_cmek, monkeypatch):
    monkeypatch.setattr("debugger.views.LOGS_PER_PAGE", 4)
    assert post_traces(dp_client, debug_session, [trace_json(payloads=False) for _ in range(3)]).status_code == 202
    local_kms.disable_key(linked_cmek)
    fresh_reader()
    try:
        client = login(org_admin)
        first = client.get(logs_url(debug_session)).content.decode()
        last = client.get(logs_url(debug_session), {"page": 2}).content.decode()
    finally:
        local_kms.enable_key(linked_cmek)
    assert "4 log lines unreadable: key disabled</strong> <code>key_disabled</code> <span class=\"hint\">on this page" in first
    assert "2 log lines unreadable: key disabled" in last and "older lines on the next" not in last
