import re

import pytest
from playwright.sync_api import expect

from konnect_admin.models import ControlPlane
from tests import factories

pytestmark = pytest.mark.browser


def test_login_create_control_plane_with_htmx_validation(page, browser_login):
    org = factories.make_organization("Acme")
    admin = factories.make_role_user(org, "org_admin")
    browser_login(admin)
    expect(page.get_by_role("heading", name="Acme")).to_be_visible()

    page.get_by_role("link", name="Control planes", exact=True).click()
    page.get_by_role("link", name="New control plane").click()
    page.get_by_label("Name").fill("x")
    page.get_by_label("Region").select_option("eu")
    page.get_by_role("button", name="Create").click()
    # htmx swapped the form in place with the error; no full navigation happened.
    expect(page.get_by_text("Ensure this value has at least 2 characters")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/control-planes/new/$"))

    page.get_by_label("Name").fill("payments")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="payments")).to_be_visible()
    control_plane = ControlPlane.objects.get(name="payments")
    assert control_plane.region == "eu"
    expect(page).to_have_url(re.compile(rf"/control-planes/{control_plane.pk}/$"))
    assert page.js_errors == []


def test_pages_work_without_javascript(page_without_js):
    org = factories.make_organization("Acme")
    admin = factories.make_role_user(org, "org_admin")
    page = page_without_js(admin)
    page.goto("/control-planes/new/")
    page.get_by_label("Name").fill("orders")
    page.get_by_label("Region").select_option("us")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="orders")).to_be_visible()
    assert ControlPlane.objects.filter(name="orders", organization=org).exists()
