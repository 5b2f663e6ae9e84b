"""The Debugger at a 390 px phone width (issue 18): the session page, its request logs and a trace fit the
viewport — tables scroll inside their own container, long ids are shortened or wrap — and a trace whose
payloads all fail alike shows one error card."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from debugger import services
from devtools import local_kms
from devtools.simulator.runner import simulate_traffic
from encryption_keys import keyring
from encryption_keys.models import EncryptionKey

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("local_kms")]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def traced(org, org_admin, control_plane, cmek):
    EncryptionKey.objects.create(organization=org, region="us", name="Acme US key", key_ref=cmek)
    session = services.session_create(actor=org_admin, control_plane=control_plane, name="checkout",
                                      duration_seconds=600, sampling_kind="expression", capture_logs=True,
                                      sampling_value='http.method == "POST" && http.path ^= "/orders"')
    assert simulate_traffic(control_plane=control_plane, requests=40, seed=4, actor=org_admin).total_sampled > 0
    return session


def overflow(page) -> int:
    """How far the document is wider than the viewport, in CSS pixels (0: it fits)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def culprits(page) -> list[str]:
    """The outermost elements reaching past the viewport's right edge, for the failure message."""
    return page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5
                     && !(e.parentElement && e.parentElement.getBoundingClientRect().right > window.innerWidth + 0.5))
        .slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right) + ' ' + e.outerHTML.slice(0, 80))""")


def assert_fits(page):
    assert overflow(page) <= 0, culprits(page)


def test_session_pages_fit_a_phone(page, browser_login, org_admin, traced, cmek):
    browser_login(org_admin)
    page.set_viewport_size(PHONE)
    cp, pk = traced.control_plane_id, traced.pk
    page.goto(reverse("debug_session_detail", args=[cp, pk]))
    expect(page.locator("table.debugger-traces")).to_be_visible()
    assert_fits(page)
    route = page.locator("table.debugger-traces tbody tr td:nth-child(6) span.debugger-entity").first
    assert route.get_attribute("title").startswith("id ")  # the route's name, its id on hover

    page.goto(reverse("debug_session_logs", args=[cp, pk]))
    expect(page.locator("table.debugger-logs")).to_be_visible()
    assert_fits(page)

    page.goto(reverse("debug_session_detail", args=[cp, pk]))
    page.locator("table.debugger-traces tbody tr a").first.click()
    expect(page.get_by_role("heading", name=re.compile("^Trace "))).to_be_visible()
    expect(page.locator("section.debugger-payload h4", has_text="Headers").first).to_be_visible()
    assert_fits(page)

    local_kms.disable_key(cmek)
    try:
        keyring.reset_for_tests()
        page.reload()
        expect(page.locator(".debugger-trace-error-card")).to_have_attribute("data-code", "key_disabled")
        expect(page.locator(".debugger-error-card")).to_have_count(1)
        expect(page.locator(".debugger-payload-states li").first).to_contain_text("key disabled")
        assert_fits(page)
        page.goto(reverse("debug_session_logs", args=[cp, pk]))
        group = page.locator("tr.debugger-log-group").first
        expect(group).to_contain_text("unreadable: key disabled")
        assert_fits(page)
        advice = group.locator(".debugger-log-advice").bounding_box()
        assert advice["x"] + advice["width"] <= PHONE["width"]  # readable without scrolling the table sideways
    finally:
        local_kms.enable_key(cmek)
    assert page.js_errors == []
