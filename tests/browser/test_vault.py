import re

import pytest
from playwright.sync_api import expect

from tests import factories
from vault.models import ConfigStore, Secret

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("local_kms")]
VALUE = "browser-secret-value-5d2e"


def test_vault_admin_adds_a_secret_and_sees_it_readable(page, browser_login):
    org = factories.make_organization("Acme")
    control_plane = factories.make_control_plane(org, name="payments")
    vault_admin = factories.make_role_user(org, "vault_admin", control_plane)
    browser_login(vault_admin)

    page.goto(f"/control-planes/{control_plane.pk}/")
    expect(page.get_by_role("heading", name="Vault")).to_be_visible()
    expect(page.get_by_text("Platform key").first).to_be_visible()
    page.get_by_role("link", name="Config stores & secrets").click()
    page.get_by_label("Name").fill("payments-secrets")
    page.get_by_role("button", name="New config store").click()
    expect(page.get_by_role("heading", name="Config store payments-secrets")).to_be_visible()
    store = ConfigStore.objects.get(control_plane=control_plane)

    page.get_by_role("link", name="New secret").click()
    value_input = page.get_by_label("Value")
    expect(value_input).to_have_attribute("type", "password")
    page.get_by_label("Key").fill("stripe-api-key")
    value_input.fill(VALUE)
    page.get_by_role("button", name="Save secret").click()

    expect(page).to_have_url(re.compile(rf"/config-stores/{store.pk}/$"))
    row = page.locator("tr", has_text="stripe-api-key")
    expect(row.locator(".vault-status")).to_have_text("readable")  # checked lazily through htmx
    assert Secret.objects.get(store=store, key="stripe-api-key").value.reveal() == VALUE
    assert VALUE not in page.content()
    assert page.js_errors == []
