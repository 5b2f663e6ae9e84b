"""The Debugger in a real browser: a trace's span waterfall, its payload panel (loaded by htmx), the error card."""

import io
import re

import pytest
from django.core.management import call_command
from django.urls import reverse
from playwright.sync_api import expect

from debugger import services
from debugger.simulator.runner import simulate_traffic
from encryption_keys import keyring, local_kms
from encryption_keys.models import EncryptionKey
from tests import factories

pytestmark = pytest.mark.browser


@pytest.fixture
def traced(page, org, org_admin, control_plane, cmek):
    """Acme with its CMEK linked, and a debug session on "payments" filled by the traffic simulator."""
    admin = org_admin
    EncryptionKey.objects.create(organization=org, region="us", name="Acme US key", key_arn=cmek)
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
        card = page.locator("#payload-client_request .debugger-error-card")
        expect(card).to_be_visible()
        expect(card).to_have_attribute("data-code", "key_disabled")
        expect(card.get_by_role("heading", name="Key disabled")).to_be_visible()
        expect(card).to_contain_text(cmek)
        expect(page.locator(".debugger-error-card[data-code=key_disabled]")).to_have_count(sections)
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
