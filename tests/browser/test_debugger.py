"""The Debugger in a real browser: a trace's span waterfall, its payload panel (loaded by htmx), the error card,
and a session page that shows traces and status changes as a data plane sends them."""

import io
import re

import pytest
from django.core.management import call_command
from django.urls import reverse
from playwright.sync_api import expect

from debugger import services
from devtools import local_kms
from devtools.simulator.runner import simulate_traffic
from encryption_keys import keyring
from encryption_keys.models import EncryptionKey
from konnect_admin import tokens
from tests import factories
from tests.debugger.conftest import PATH, trace_json

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("local_kms")]


@pytest.fixture
def traced(page, org, org_admin, control_plane, cmek):
    """Acme with its CMEK linked, and a debug session on "payments" filled by the traffic simulator."""
    admin = org_admin
    EncryptionKey.objects.create(organization=org, region="us", name="Acme US key", key_ref=cmek)
    session = services.session_create(actor=admin, control_plane=control_plane, name="checkout",
                                      duration_seconds=600, sampling_kind="expression",
                                      sampling_value='http.method == "POST" && http.path ^= "/orders"')
    report = simulate_traffic(control_plane=control_plane, requests=40, seed=4, actor=admin)
    assert report.total_sampled > 0
    return admin, session


def test_trace_waterfall_payload_panel_and_error_card(page, browser_login, traced, cmek):
    admin, session = traced
    browser_login(admin)
    page.goto(reverse("debug_session_detail", args=[session.control_plane_id, session.pk]))
    expect(page.get_by_text("cannot be searched")).to_be_visible()
    page.locator("table.debugger-traces tbody tr a").first.click()
    expect(page.get_by_role("heading", name=re.compile("^Trace "))).to_be_visible()

    # The waterfall: one SVG bar per span, the root spanning the whole width; a span opens on click.
    bars = page.locator("svg.debugger-bar rect")
    assert bars.count() >= 8
    assert bars.first.get_attribute("width") == "1000.00"
    access = page.locator("details.debugger-span", has_text="kong.phase.access").first
    access.locator("summary").click()
    expect(access.get_by_text("Span id")).to_be_visible()

    # The payload panel arrives by htmx after the page, decrypted.
    panel = page.locator("#payload-client_request")
    expect(panel.get_by_role("heading", name="Headers")).to_be_visible()
    expect(panel.get_by_text("Bearer ****")).to_be_visible()
    expect(panel.locator("pre.debugger-body")).to_contain_text('"customer"')
    sections = page.locator("section.debugger-payload").count()
    assert sections >= 2
    # The panels load one after the other (hx-sync), every one of them decrypted.
    expect(page.locator("section.debugger-payload h4", has_text="Headers")).to_have_count(sections)
    assert page.locator(".debugger-error-card").count() == 0

    # The customer disables their key; once cached keys are gone the same page shows the error card.
    local_kms.disable_key(cmek)
    try:
        call_command("check_keys", stdout=io.StringIO())  # the health check notices: the org banner appears
        keyring.reset_for_tests()
        page.reload()
        expect(page.locator(".banner-error")).to_contain_text("disabled")
        # Every payload fails alike: one card for the trace, a line per payload beneath it (issue 18).
        card = page.locator("#payloads .debugger-trace-error-card")
        expect(card).to_be_visible()
        expect(card).to_have_attribute("data-code", "key_disabled")
        expect(card.get_by_role("heading", name="Key disabled")).to_be_visible()
        expect(card).to_contain_text(cmek)
        expect(page.locator(".debugger-error-card[data-code=key_disabled]")).to_have_count(1)
        expect(page.locator(".debugger-payload-states li")).to_have_count(sections)
        expect(page.locator("#payload-client_request")).to_contain_text("Client request — key disabled")
        expect(page.locator("svg.debugger-bar rect").first).to_be_visible()  # metadata still readable
    finally:
        local_kms.enable_key(cmek)
    assert page.js_errors == []


def test_create_session_with_htmx_validation(page, browser_login, control_plane):
    admin = factories.make_role_user(control_plane.organization, "org_admin")
    browser_login(admin)
    page.goto(reverse("control_plane_detail", args=[control_plane.pk]))
    page.get_by_role("link", name="New debug session").first.click()
    page.get_by_label("Sampling rule").select_option("expression")
    page.get_by_label("Route, service or expression").fill("http.response.status_code = 503")
    page.get_by_role("button", name="Start session").click()
    expect(page.get_by_text("Invalid sampling rule")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/debugger/new/$"))
    page.get_by_label("Route, service or expression").fill("http.response.status_code == 503")
    page.get_by_role("button", name="Start session").click()
    expect(page.get_by_role("heading", name=re.compile("Debug session"))).to_be_visible()
    expect(page.get_by_text("expression: http.response.status_code == 503")).to_be_visible()
    assert page.js_errors == []


@pytest.fixture
def data_plane(browser, live_server):
    """`data_plane(token)(method, path, body)`: the live server's data-plane API over HTTP, from a browser context
    of its own (no login cookie), with a data-plane token."""
    context = browser.new_context(base_url=live_server.url)

    def _client(token: str):
        def _call(method: str, path: str, body: dict | None = None) -> dict:
            response = context.request.fetch(f"/api/us/v1/debugger/sessions{path}", method=method, data=body,
                                             headers={"Authorization": f"Bearer {token}"}, timeout=30_000)
            assert response.status in (200, 202), (response.status, response.text())
            return response.json()

        return _call

    yield _client
    context.close()


def test_session_page_shows_traces_and_status_as_they_arrive(page, browser_login, data_plane, org_admin,
                                                             control_plane):
    session = services.session_create(actor=org_admin, control_plane=control_plane, name="live",
                                      duration_seconds=600)
    _token, text = tokens.data_plane_token_create(actor=org_admin, control_plane=control_plane, name="dp")
    send = data_plane(text)
    browser_login(org_admin)
    url = reverse("debug_session_detail", args=[control_plane.pk, session.pk])
    page.goto(url)
    status = page.locator("#session-head .badge")
    expect(status).to_have_text("Pending")
    expect(page.get_by_text("No traces yet")).to_be_visible()
    expect(page.get_by_role("link", name="Refresh")).to_have_attribute("href", url)
    page.evaluate("window.sameDocument = true")

    # While nothing changes, the poll is answered 204 No Content (the browser sends the progress it shows).
    with page.expect_response(lambda r: r.url.endswith(url) and r.status == 204, timeout=30_000):
        pass

    send("GET", "")  # a data plane picks the session up: it starts
    expect(status).to_have_text("In progress", timeout=30_000)
    expect(page.get_by_text("not started by a data plane yet")).to_have_count(0)

    traces = [trace_json(status=201), trace_json(status=503)]
    assert send("POST", f"/{session.pk}/traces", {"traces": traces})["accepted"] == 2
    for trace in traces:
        expect(page.locator(f"#trace-{trace['trace_id']}")).to_be_visible(timeout=30_000)
    expect(page.locator("table.debugger-traces tbody tr")).to_have_count(2)
    expect(page.locator("table.debugger-traces code", has_text=PATH)).to_have_count(2)  # revealed for the admin
    expect(page.locator("#session-facts")).to_contain_text("2 of at most 100")

    # Filtered (htmx, the URL follows), the table keeps its filter while it updates: newest first.
    page.get_by_label("Status").fill("5xx")
    page.get_by_label("Status").press("Enter")
    expect(page).to_have_url(re.compile(r"\?status=5xx"))
    rows = page.locator("table.debugger-traces tbody tr")
    expect(rows).to_have_count(1)
    late_502, late_404 = trace_json(status=502), trace_json(status=404, method="GET")
    assert send("POST", f"/{session.pk}/traces", {"traces": [late_404, late_502]})["accepted"] == 2
    expect(rows.first.locator("a")).to_have_id(f"trace-{late_502['trace_id']}", timeout=30_000)
    expect(rows).to_have_count(2)
    expect(page.locator(f"#trace-{late_404['trace_id']}")).to_have_count(0)
    expect(page.locator("#session-facts")).to_contain_text("4 of at most 100")

    send("POST", f"/{session.pk}/done")
    expect(status).to_have_text("Completed", timeout=30_000)
    expect(page.get_by_role("button", name="Stop sampling")).to_have_count(0)
    expect(page.locator("[hx-trigger^=every]")).to_have_count(0)  # the ended session's fragment does not poll
    expect(rows).to_have_count(2)
    assert page.evaluate("window.sameDocument") is True  # all of it swapped in place: the page never reloaded
    assert page.js_errors == []
