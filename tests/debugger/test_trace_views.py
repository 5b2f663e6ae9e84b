"""Traces table (metadata filters, payload previews), trace detail (waterfall), payload panels, request logs."""

import base64
import re

import pytest
from django.urls import reverse

from debugger.models import PayloadCapture, Trace
from tests import factories
from tests.debugger.conftest import (
    BODY_SECRET,
    HEADER_SECRET,
    LOG_SECRET,
    PATH,
    QUERY_SECRET,
    post_traces,
    trace_json,
)

pytestmark = pytest.mark.django_db
SECRETS = (BODY_SECRET, HEADER_SECRET, QUERY_SECRET, LOG_SECRET)


def detail_url(session):
    return reverse("debug_session_detail", args=[session.control_plane_id, session.pk])


def trace_url(session, trace_id):
    return reverse("debug_trace_detail", args=[session.control_plane_id, session.pk, trace_id])


def panel_url(session, trace_id, kind="client_request"):
    return reverse("debug_payload_panel", args=[session.control_plane_id, session.pk, trace_id, kind])


def test_traces_table_lists_metadata_and_path_previews_but_no_payload_secrets(login, org_admin, debug_session, ingest):
    ingest(2)
    response = login(org_admin).get(detail_url(debug_session))
    page = response.content.decode()
    assert response.status_code == 200
    assert page.count(f"<code>{PATH}</code>") == 2  # decrypted preview: the path, never the query string
    assert "route-orders" in page and "201" in page
    assert "cannot be searched" in page
    for secret in SECRETS:
        assert secret not in page


@pytest.mark.parametrize(("query", "expected"), [
    ({"status": "5xx"}, {"slow-503"}),
    ({"status": "404"}, {"get-404"}),
    ({"method": "GET"}, {"get-404"}),
    ({"latency_min": "100"}, {"slow-503"}),
    ({"latency_max": "20"}, {"get-404"}),
    ({"route": "route-b"}, {"get-404"}),
    ({"service": "svc-orders", "status": "2xx"}, {"post-201"}),
])
def test_traces_filter_on_unencrypted_metadata(login, org_admin, debug_session, dp_client, query, expected):
    traces = {
        "post-201": trace_json(status=201, total_ms=50),
        "slow-503": trace_json(status=503, total_ms=250),
        "get-404": trace_json(status=404, method="GET", total_ms=10, route_id="route-b", service_id="svc-b"),
    }
    post_traces(dp_client, debug_session, list(traces.values()))
    response = login(org_admin).get(detail_url(debug_session), query, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="traces">') and "<html" not in page
    shown = {name for name, trace in traces.items() if trace["trace_id"] in page}
    assert shown == expected


def test_an_invalid_filter_is_shown_and_ignored(login, org_admin, debug_session, ingest):
    ingest(1)
    page = login(org_admin).get(detail_url(debug_session), {"status": "abc", "latency_min": "-1"}).content.decode()
    assert "Filter “Status” ignored" in page and "Filter “Latency ≥ (ms)” ignored" in page
    assert Trace.objects.get().trace_id in page
    url = detail_url(debug_session)
    assert f'action="{url}"' in page and f'hx-get="{url}" hx-target="#traces"' in page  # the filter form


def page_ids(html: str) -> list[str]:
    return re.findall(r'id="trace-([0-9a-f]{32})"', html)


def link(html: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]*)" rel="{rel}">', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_the_traces_table_pages_by_cursor_newest_first_without_js(login, org_admin, debug_session, dp_client):
    traces = [trace_json(payloads=False, logs=False) for _ in range(55)]
    for index, trace in enumerate(traces):
        trace["start_time"] = f"2026-11-01T10:00:{index // 2:02d}+00:00"  # pairs share a start time: the id decides
    post_traces(dp_client, debug_session, traces)
    newest_first = [t.trace_id for t in Trace.objects.filter(session=debug_session).order_by("-start_time", "-id")]
    client = login(org_admin)
    first = client.get(detail_url(debug_session)).content.decode()
    assert page_ids(first) == newest_first[:50] and link(first, "prev") is None and "55 traces" in first
    second = client.get(detail_url(debug_session) + link(first, "next")).content.decode()
    assert page_ids(second) == newest_first[50:] and link(second, "next") is None
    back = client.get(detail_url(debug_session) + link(second, "prev")).content.decode()
    assert page_ids(back) == newest_first[:50]
    filtered = client.get(detail_url(debug_session), {"method": "POST", "after": link(first, "next")[7:]})
    assert page_ids(filtered.content.decode()) == newest_first[50:]  # filters and cursor together
    for junk in ("x", "1.", "99999999999999999999999.1", "-5.abc"):
        response = client.get(detail_url(debug_session), {"after": junk, "before": junk})
        assert response.status_code == 200 and page_ids(response.content.decode()) == newest_first[:50]


@pytest.mark.parametrize("reader", ["org_admin", "cp_viewer"])
def test_the_session_page_reads_as_many_queries_for_10_or_60_traces(login, org, org_admin, control_plane, debug_session,
                                                                     make_session, ingest, django_assert_max_num_queries,
                                                                     reader):
    """Bounded queries whatever the page size, for who reads the paths and who sees them sealed: the session, its
    progress, the page of traces (with its route and service names), the payload counts and the path previews
    come in one query each. 60 traces: the page shows 50 and reveals only their paths."""
    small = make_session(name="small")
    ingest(10, session=small)
    ingest(60)
    user = org_admin if reader == "org_admin" else factories.make_role_user(org, "cp_viewer", control_plane)
    client = login(user)
    counts = []
    for session, rows in ((small, 10), (debug_session, 50)):
        client.get(detail_url(session))  # warm: data keys cached, as a server is
        with django_assert_max_num_queries(14 if reader == "org_admin" else 13) as captured:
            page = client.get(detail_url(session)).content.decode()
        assert page.count('<tr>\n        <td><a id="trace-') == rows
        assert page.count(f"<code>{PATH}</code>") == (rows if reader == "org_admin" else 0)
        counts.append(len(captured))
    assert counts[0] == counts[1]


def test_trace_detail_draws_the_waterfall_and_defers_payloads(login, org_admin, debug_session, ingest):
    trace_id = ingest(1, total_ms=40.0)[0]
    response = login(org_admin).get(trace_url(debug_session, trace_id))
    page = response.content.decode()
    assert response.status_code == 200
    # Three spans: root over the whole trace, access 1 ms at +0.1 ms, ttfb from +2 ms to the end.
    assert '<rect x="0.00" y="1" width="1000.00"' in page
    assert '<rect x="2.50" y="1" width="25.00"' in page
    assert '<rect x="50.00" y="1" width="950.00"' in page
    assert "<title>kong.phase.access: 1.000 ms, starting at +0.100 ms</title>" in page
    assert "kong.plugin.name" in page and "key-auth" in page  # attributes in a <details> list
    panel = panel_url(debug_session, trace_id)
    assert f'hx-get="{panel}" hx-trigger="load"' in page and f'href="{panel}"' in page
    assert '<div id="payloads" class="debugger-payloads" hx-sync="this:queue all">' in page
    for secret in SECRETS:
        assert secret not in page


def test_payload_panel_htmx_fragment_shows_the_decrypted_payload(login, org_admin, debug_session, ingest):
    trace_id = ingest(1)[0]
    response = login(org_admin).get(panel_url(debug_session, trace_id), headers={"HX-Request": "true"})
    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<section class="card debugger-payload" id="payload-client_request"')
    assert "<html" not in page
    assert f"https://api.test{PATH}?key={QUERY_SECRET}" in page
    assert HEADER_SECRET in page and "Bearer ****" in page
    assert f'&quot;card_holder&quot;: &quot;{BODY_SECRET}&quot;' in page  # pretty-printed JSON
    assert "error-card" not in page


def test_payload_panel_without_htmx_is_a_full_page(login, org_admin, debug_session, ingest):
    trace_id = ingest(1)[0]
    page = login(org_admin).get(panel_url(debug_session, trace_id)).content.decode()
    assert "<html" in page and "Back to the trace" in page and BODY_SECRET in page


def test_large_bodies_are_truncated_with_show_all(login, org_admin, debug_session, ingest):
    body = ("line of text " * 2000).encode()
    trace_id = ingest(1, body=body)[0]
    client = login(org_admin)
    page = client.get(panel_url(debug_session, trace_id), headers={"HX-Request": "true"}).content.decode()
    assert "Show all" in page and f"{panel_url(debug_session, trace_id)}?full=1" in page
    assert page.count("line of text") < 2000
    full = client.get(panel_url(debug_session, trace_id), {"full": "1"}, headers={"HX-Request": "true"})
    assert full.content.decode().count("line of text") == 2000 and "Show all" not in full.content.decode()


def test_binary_bodies_are_shown_as_hex(login, org_admin, debug_session, dp_client):
    trace = trace_json()
    trace["payloads"][1]["headers"] = {"content-type": "image/png"}
    trace["payloads"][1]["body_base64"] = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256))).decode()
    post_traces(dp_client, debug_session, [trace])
    page = login(org_admin).get(panel_url(debug_session, trace["trace_id"], "client_response"),
                                headers={"HX-Request": "true"}).content.decode()
    assert "89 50 4e 47 0d 0a 1a 0a 00 01 02 03 04 05 06 07" in page
    assert "<code>00000000</code>" in page and "binary" in page


def test_payload_of_a_kind_not_captured_is_404(login, org_admin, debug_session, ingest):
    trace_id = ingest(1)[0]
    assert login(org_admin).get(panel_url(debug_session, trace_id, "upstream_request")).status_code == 404
    assert login(org_admin).get(trace_url(debug_session, "0" * 32)).status_code == 404


def test_viewers_do_not_read_payloads(login, org, control_plane, debug_session, ingest):
    """Viewers see the encrypted state (every role and page: tests/debugger/test_payload_access.py)."""
    trace_id = ingest(1)[0]
    viewer = factories.make_role_user(org, "cp_viewer", control_plane)
    page = login(viewer).get(panel_url(debug_session, trace_id)).content.decode()
    assert BODY_SECRET not in page and "Encrypted — your role cannot read payloads" in page


def test_payloads_of_another_organization_are_404(login, other_org_admin, debug_session, ingest):
    trace_id = ingest(1)[0]
    client = login(other_org_admin)
    for url in (trace_url(debug_session, trace_id), panel_url(debug_session, trace_id)):
        response = client.get(url)
        assert response.status_code == 404 and BODY_SECRET not in response.content.decode()


def test_request_logs_tab_decrypts_and_filters(login, org_admin, debug_session, dp_client):
    trace = trace_json()
    post_traces(dp_client, debug_session, [trace, trace_json()])
    url = reverse("debug_session_logs", args=[debug_session.control_plane_id, debug_session.pk])
    client = login(org_admin)
    page = client.get(url).content.decode()
    assert page.count(LOG_SECRET) == 2 and page.count("upstream slow") == 2
    assert f'action="{url}"' in page and f'hx-get="{url}" hx-target="#logs"' in page  # the filter form
    errors = client.get(url, {"level": "error"}, headers={"HX-Request": "true"}).content.decode()
    assert errors.lstrip().startswith('<div id="logs">') and "<html" not in errors
    assert errors.count("upstream slow") == 2 and LOG_SECRET not in errors
    access_span = trace["spans"][1]["span_id"]
    assert f'href="?span={access_span}"' in page  # each span id links to its filter (one "?", not two)
    by_span = client.get(url, {"span": access_span}).content.decode()
    assert by_span.count(LOG_SECRET) == 1 and "upstream slow" not in by_span
    by_trace = client.get(url, {"trace": trace["trace_id"]}).content.decode()
    assert by_trace.count(LOG_SECRET) == 1
    bad = client.get(url, {"span": "nothex"}).content.decode()
    assert "A span id is 16 hex digits." in bad


def test_payload_body_column_is_never_rendered_raw(login, org_admin, debug_session, ingest):
    trace_id = ingest(1)[0]
    envelope = bytes(PayloadCapture.objects.get(kind="client_request").body.envelope)
    page = login(org_admin).get(panel_url(debug_session, trace_id)).content.decode()
    assert envelope.hex() not in page and base64.b64encode(envelope).decode() not in page


def test_the_filter_form_shows_each_requests_own_values(login, org_admin, debug_session, ingest):
    """Its fields are rendered once per distinct values (debugger.forms.trace_filter_fields): never another's."""
    ingest(1)
    client = login(org_admin)
    for _ in range(2):
        for status, method in (("5xx", "GET"), ("404", "POST"), ("abc", "")):
            page = client.get(detail_url(debug_session), {"status": status, "method": method}).content.decode()
            assert f'name="status" value="{status}"' in page
            assert re.findall(r'<option value="([A-Z]*)" selected>', page) == [method]
            assert ('aria-invalid="true"' in page) == (status == "abc")
    assert 'name="status" value' not in client.get(detail_url(debug_session)).content.decode()


def test_pages_show_the_names_stored_with_the_trace(login, org_admin, debug_session, dp_client):
    """The traces table and the trace page read the names from the trace row, not from its spans."""
    named, bare = trace_json(route_id="9f1c2d3e-route"), trace_json(route_id="7a6b5c4d-route")
    named["spans"][1]["attributes"]["kong.route.name"] = "from-span"
    post_traces(dp_client, debug_session, [named, bare])
    Trace.objects.filter(trace_id=named["trace_id"]).update(route_name="stored-route", service_name="stored-svc")
    client = login(org_admin)
    table = client.get(detail_url(debug_session)).content.decode()
    assert '<span class="debugger-entity" title="id 9f1c2d3e-route">stored-route</span>' in table
    assert '<span class="debugger-entity" title="id svc-orders">stored-svc</span>' in table
    assert "from-span" not in table
    assert '<code class="debugger-id debugger-short-id" title="7a6b5c4d-route">7a6b5c4d-route</code>' in table
    page = client.get(trace_url(debug_session, named["trace_id"])).content.decode()
    assert 'title="id 9f1c2d3e-route">stored-route</span> <code class="debugger-id" id="trace-route-id">' in page
