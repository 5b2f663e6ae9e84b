"""An Org Admin manages a system account with the keyboard only (real Chromium), with and without JavaScript, and
the token it issues works on the API."""

import re

import pytest
from playwright.sync_api import expect

from konnect_admin import system_accounts as accounts
from konnect_admin.models import Role, RoleAssignment, SystemAccount, SystemAccountAccessToken, Team
from tests import factories

pytestmark = pytest.mark.browser


def test_org_admin_manages_a_system_account_with_the_keyboard(page, browser_login, live_server):
    org = factories.make_organization("Acme")
    admin = factories.make_role_user(org, "org_admin")
    browser_login(admin)

    page.locator("summary", has_text="Organization settings").focus()
    page.keyboard.press("Enter")
    page.get_by_role("link", name="System accounts").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="System accounts", exact=True)).to_be_visible()
    page.get_by_label("Name").focus()
    page.keyboard.type("terraform-ci")
    page.keyboard.press("Tab")
    page.keyboard.type("Terraform in CI")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Create system account")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="terraform-ci")).to_be_visible()
    account = SystemAccount.objects.get(organization=org)
    assert account.description == "Terraform in CI"

    # Teams: a checkbox, toggled with Space.
    page.get_by_label("Organization Admin (Read Only)").focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Save teams").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Teams saved.")).to_be_visible()
    assert list(Team.objects.filter(members=account.user).values_list("predefined_role", flat=True)) == [
        Role.ORG_ADMIN_READ_ONLY]

    page.get_by_label("Role").select_option("envelope_materials")
    page.get_by_role("button", name="Assign role").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Role assigned.")).to_be_visible()
    assert RoleAssignment.objects.filter(user=account.user, role=Role.ENVELOPE_MATERIALS).exists()

    # The token form is swapped in place by htmx: the text shows once, on this page only.
    url = page.url
    page.locator("#tokens").get_by_label("Name").fill("prod")
    page.get_by_role("button", name="Generate token").focus()
    page.keyboard.press("Enter")
    token_text = page.locator("#new-token").inner_text(timeout=10_000).strip()
    assert token_text.startswith("spat_") and page.url == url
    response = page.request.get(f"{live_server.url}/api/us/v0/cmeks",
                                headers={"Authorization": f"Bearer {token_text}"})
    assert response.status == 200 and response.json()["data"] == []
    page.reload()
    expect(page.locator("#new-token")).to_have_count(0)
    page.get_by_role("button", name="Revoke token prod").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Token prod revoked.")).to_be_visible()
    assert accounts.system_account_token_authenticate(token_text) is None
    assert not page.js_errors


def test_the_pages_work_without_javascript(page_without_js):
    org = factories.make_organization("Acme")
    admin = factories.make_role_user(org, "org_admin")
    page = page_without_js(admin)
    page.goto("/organization/system-accounts/")
    page.get_by_label("Name").fill("billing")
    page.get_by_role("button", name="Create system account").click()
    expect(page.get_by_role("heading", name="billing")).to_be_visible()
    page.locator("#tokens").get_by_label("Name").fill("app")
    page.get_by_role("button", name="Generate token").click()
    expect(page.locator("#new-token")).to_contain_text("spat_")
    expect(page).to_have_url(re.compile(r"/tokens/$"))  # the plain POST's own response shows it
    assert SystemAccountAccessToken.objects.filter(system_account__name="billing").count() == 1
