"""The shared frame in a real browser: the organization switcher keeps to one line and the top bar stays one row
high at desktop width; messages show as alerts inside the content column."""

import pytest
from playwright.sync_api import expect

from konnect_admin import services
from konnect_admin.models import Team
from tests import factories

pytestmark = pytest.mark.browser


def test_org_switcher_stays_on_one_line_and_messages_are_alerts(page, browser_login):
    org = factories.make_organization("Acme")
    other = factories.make_organization("Zenith, a much longer organization name, Inc.")
    admin = factories.make_role_user(org, "org_admin")
    services.member_add(organization=other, user=admin, actor=None)
    person = factories.make_user(org)
    browser_login(admin)

    select = page.locator("#org-switch").bounding_box()
    button = page.locator(".org-switch button").bounding_box()
    assert abs(select["y"] + select["height"] / 2 - (button["y"] + button["height"] / 2)) < 4  # one row
    assert page.locator(".topbar").bounding_box()["height"] < 70

    page.goto("/organization/members/")
    form = page.locator("form", has=page.get_by_role("button", name="Add to team"))
    form.get_by_label("Person").select_option(str(person.pk))
    form.get_by_label("Team").select_option(str(Team.objects.get(organization=org, name="Control Plane Admin").pk))
    form.get_by_role("button", name="Add to team").click()
    alert = page.get_by_role("status").filter(has_text=f"{person.email} added to Control Plane Admin.")
    expect(alert).to_be_visible()
    main, box = page.locator("main").bounding_box(), alert.bounding_box()
    assert main["x"] <= box["x"] and box["x"] + box["width"] <= main["x"] + main["width"]
    assert page.js_errors == []
