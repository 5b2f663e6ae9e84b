"""New tokens in a real browser: generated through htmx with no console error (CSP included: no inline style or
script anywhere), and copied with the Copy button."""

import pytest
from playwright.sync_api import expect

from konnect_admin.models import PersonalAccessToken
from tests import factories

pytestmark = pytest.mark.browser
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.__cspViolations.push(
    e.violatedDirective + " " + (e.blockedURI || "inline") + " " + (e.sample || "")));
"""


def test_generate_and_copy_a_personal_access_token_without_console_errors(page, browser_login, live_server):
    page.context.add_init_script(RECORD_CSP_VIOLATIONS)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    org = factories.make_organization("Acme")
    admin = factories.make_role_user(org, "org_admin")
    browser_login(admin)
    page.goto("/account/tokens/")
    page.get_by_label("Name").fill("terraform-ci")
    page.get_by_role("button", name="Generate token").click()
    token = page.locator("#new-token")
    expect(token).to_be_visible()  # swapped in by htmx: no navigation
    assert page.url.endswith("/account/tokens/")
    text = token.inner_text().strip()
    assert text.startswith("kpat_") and PersonalAccessToken.objects.filter(name="terraform-ci").exists()

    copy = page.get_by_role("button", name="Copy")
    expect(copy).to_be_visible()
    copy.click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == text

    assert page.evaluate("window.__cspViolations") == []
    assert page.js_errors == []


def test_the_copy_button_stays_hidden_without_javascript(page_without_js):
    org = factories.make_organization("Acme")
    admin = factories.make_role_user(org, "org_admin")
    page = page_without_js(admin)
    page.goto("/account/tokens/")
    page.get_by_label("Name").fill("no-js")
    page.get_by_role("button", name="Generate token").click()
    expect(page.locator("#new-token")).to_be_visible()
    expect(page.get_by_role("button", name="Copy")).to_be_hidden()
