"""Invitations in Chromium: an Org Admin invites from the Members page, the invited person follows the e-mailed link
(the locmem outbox) and signs up; a pending invitation is revoked over htmx; the last admin is refused, with the
message in the page."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from konnect_admin.models import Invitation, Role, RoleAssignment, User
from konnect_admin.permissions import Action, can
from tests import factories

pytestmark = pytest.mark.browser


def test_invite_follow_the_emailed_link_sign_up_and_land_in_the_org(page, browser, live_server, browser_login):
    org = factories.make_organization("Acme")
    admin = factories.make_role_user(org, "org_admin")
    browser_login(admin)
    page.goto("/organization/members/")
    page.get_by_label("Email addresses").fill("nia@new.test, later@new.test")
    page.get_by_label("Organization Admin", exact=True).check()
    page.get_by_role("button", name="Send invitations").click()
    expect(page.locator("main .messages")).to_contain_text("Invitation sent to nia@new.test, later@new.test.")
    pending = page.locator("#invitations")
    expect(pending).to_contain_text("nia@new.test")

    page.once("dialog", lambda dialog: dialog.accept())  # hx-confirm
    page.get_by_role("button", name="Revoke the invitation of later@new.test").click()
    expect(pending).to_contain_text("Invitation of later@new.test revoked")
    expect(pending).not_to_contain_text("Resend the invitation of later@new.test")
    assert Invitation.objects.get(email="later@new.test").revoked_at is not None

    message = next(m for m in mail.outbox if m.to == ["nia@new.test"])
    link = re.search(r"(http://\S+/invitations/\S+/)", message.body).group(1)
    assert link.startswith(live_server.url)
    invited = browser.new_context(base_url=live_server.url).new_page()
    invited.goto(link)
    expect(invited.get_by_role("heading", name="Join Acme")).to_be_visible()
    assert "/invitations/accept/" in invited.url  # the token left the address bar
    invited.get_by_label("First name").fill("Nia")
    invited.get_by_label(re.compile(r"^Password(?! again)")).fill("nia-picked-this-41")
    invited.get_by_label("Password again").fill("nia-picked-this-41")
    invited.get_by_role("button", name="Create account and join").click()
    expect(invited.locator("main .messages")).to_contain_text("Welcome to Acme.")
    nia = User.objects.get(email="nia@new.test")
    assert can(nia, Action.MEMBERS_MANAGE, org)

    invited.goto(link)  # used: a clear page, not an error
    expect(invited.get_by_role("heading", name="Invitation already used")).to_be_visible()
    invited.context.close()
    assert page.js_errors == []


def test_the_last_admin_sees_why_their_role_cannot_be_revoked(page, browser_login):
    org = factories.make_organization("Acme")
    admin = factories.make_user(org)
    factories.grant(admin, org, Role.ORG_ADMIN)
    browser_login(admin)
    page.goto("/organization/members/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Revoke Organization Admin from {admin.email}").click()
    expect(page.locator("#roles [role=alert]")).to_contain_text("must keep at least one active Organization Admin")
    assert RoleAssignment.objects.filter(user=admin, role=Role.ORG_ADMIN).exists()
    assert page.js_errors == []
