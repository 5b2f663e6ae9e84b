"""The audit log in a real browser: filtered with the keyboard alone, the filters land in the URL (a link, kept by
pagination), and the page fits a phone's width."""

import re

import pytest
from playwright.sync_api import expect

from konnect_admin.services import audit_record
from tests import factories

pytestmark = pytest.mark.browser


def test_filter_with_the_keyboard_and_fit_a_phone(page, browser_login):
    org = factories.make_organization("Acme")
    admin = factories.make_role_user(org, "org_admin")
    plane = factories.make_control_plane(org, name="payments")
    audit_record(actor=admin, organization=org, action="control_plane.created", target=plane,
                 details={"region": "us"})
    audit_record(actor=None, organization=org, action="encryption_key.checked",
                 details={"checks": {"arn_syntax": "pass"}, "key_arn": "arn:aws:kms:us-east-2:111122223333:key/"
                          "1234abcd-12ab-34cd-56ef-1234567890ab-with-a-very-long-tail-that-must-wrap"})
    browser_login(admin)
    page.goto("/organization/audit-log/")
    page.get_by_label("Who").focus()
    page.keyboard.press("ArrowDown")  # "System"
    page.keyboard.press("ArrowDown")  # the admin
    page.get_by_label("Target").focus()
    page.keyboard.type("paym")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"actor=.*target=paym"))
    rows = page.locator("#events tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Created a control plane")
    expect(rows.first.get_by_role("link", name="payments")).to_be_visible()

    page.set_viewport_size({"width": 390, "height": 800})
    page.goto("/organization/audit-log/")
    wide = page.evaluate("""[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391)
        .map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right))""")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, wide
    when = page.locator("#events tbody tr td time").first.bounding_box()
    assert when["height"] < 30  # the timestamp keeps to one line
    assert page.js_errors == []
