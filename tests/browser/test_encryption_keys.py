"""An Org Admin links a customer key through the form, sees the checklist, then the key page (real Chromium)."""

import re

import pytest
from playwright.sync_api import expect

from devtools import local_kms as kms_admin
from encryption_keys.models import EncryptionKey, KeyStatus
from tests import factories

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("local_kms")]


def customer_key() -> str:
    arn = kms_admin.create_key(region="us-west-2", multi_region=True)
    kms_admin.replicate_key(arn, to_region="us-east-2")
    return arn


def test_org_admin_links_a_key_and_sees_the_checklist(page, browser_login):
    org = factories.make_organization("Acme")
    admin = factories.make_role_user(org, "org_admin")
    arn = customer_key()
    browser_login(admin)

    page.locator("summary", has_text="Organization settings").click()
    page.get_by_role("link", name="Encryption Keys").click()
    expect(page.get_by_role("heading", name="Protect your data with your own key")).to_be_visible()
    page.get_by_role("link", name="Link key").click()
    expect(page.locator("#key-policy-json")).to_contain_text(f'"kms:EncryptionContext:konnect:org": "{org.pk}"')
    expect(page.locator("#key-policy").get_by_role("button", name="Copy statements")).to_be_visible()  # copy.js

    # A disabled key: Connect swaps in the checklist with the failure, in place (no navigation).
    kms_admin.disable_key(arn)
    page.get_by_role("textbox", name="Name", exact=True).fill("Acme US")
    page.get_by_label("Key reference").fill(arn)
    page.get_by_label("Description").fill("Production key")
    page.get_by_label("Konnect region").select_option("us")
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_text("The key was not linked")).to_be_visible()
    expect(page.locator('[data-check="key_state"] .badge')).to_have_text("Fail")
    expect(page.locator('[data-check="round_trip"] .badge')).to_have_text("Not run")  # stopped at key_state
    expect(page).to_have_url(re.compile(r"/organization/encryption-keys/link/$"))
    assert not EncryptionKey.objects.exists()

    # Enabled again: every check passes and the key is linked.
    kms_admin.enable_key(arn)
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_text("Key linked.")).to_be_visible()
    expect(page.locator(".encryption-keys-check")).to_have_count(10)
    expect(page.locator('.encryption-keys-check[data-verdict="pass"]')).to_have_count(10)
    key = EncryptionKey.objects.get(organization=org)
    assert (key.key_ref, key.status, key.description) == (arn, KeyStatus.HEALTHY, "Production key")

    page.get_by_role("link", name="Open the key page").click()
    expect(page.get_by_role("heading", name="Acme US")).to_be_visible()
    expect(page.locator("#key-usage")).to_contain_text("GenerateDataKey")

    # Check now swaps the status region after the key is disabled in KMS.
    kms_admin.disable_key(arn)
    page.get_by_role("button", name="Check now").click()
    expect(page.locator("#key-status")).to_contain_text("status changed from healthy to disabled")
    page.reload()
    expect(page.locator(".banner-error")).to_contain_text("Encryption key “Acme US” (US): disabled.")
    assert page.js_errors == []


def test_link_key_works_without_javascript(page_without_js):
    org = factories.make_organization("Acme")
    admin = factories.make_role_user(org, "org_admin")
    arn = customer_key()
    page = page_without_js(admin)
    page.goto("/organization/encryption-keys/link/")
    page.get_by_role("textbox", name="Name", exact=True).fill("Acme US")
    page.get_by_label("Key reference").fill(arn)
    page.get_by_label("Konnect region").select_option("us")
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_text("Key linked.")).to_be_visible()
    expect(page.locator('.encryption-keys-check[data-verdict="pass"]')).to_have_count(10)
    expect(page.get_by_role("button", name="Copy statements").first).to_be_hidden()
    assert EncryptionKey.objects.filter(organization=org, key_ref=arn).exists()


def test_a_key_with_warnings_is_linked_after_link_anyway_and_its_reference_copied(page, browser_login, live_server):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    org = factories.make_organization("Acme")
    browser_login(factories.make_role_user(org, "org_admin"))
    arn = kms_admin.create_key(region="us-west-2")  # single-region: passes, with a warning
    page.goto("/organization/encryption-keys/link/")
    page.get_by_role("textbox", name="Name", exact=True).fill("Acme US")
    page.get_by_label("Key reference").fill(arn)
    page.get_by_label("Konnect region").select_option("us")
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_text("Link anyway?")).to_be_visible()
    expect(page.locator('.encryption-keys-check[data-verdict="warn"]')).not_to_have_count(0)
    assert not EncryptionKey.objects.exists()

    page.get_by_role("button", name="Link anyway").click()
    expect(page.get_by_text("Key linked.")).to_be_visible()
    assert EncryptionKey.objects.get(organization=org).key_ref == arn

    page.get_by_role("link", name="Open the key page").click()
    page.locator(".key-ref").get_by_role("button", name="Copy").click()
    expect(page.locator(".key-ref").get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == arn
    assert page.js_errors == []


def test_link_anyway_works_without_javascript(page_without_js):
    org = factories.make_organization("Acme")
    admin = factories.make_role_user(org, "org_admin")
    arn = kms_admin.create_key(region="us-west-2")
    page = page_without_js(admin)
    page.goto("/organization/encryption-keys/link/")
    page.get_by_role("textbox", name="Name", exact=True).fill("Acme US")
    page.get_by_label("Key reference").fill(arn)
    page.get_by_label("Konnect region").select_option("us")
    page.get_by_role("button", name="Connect").click()
    expect(page.get_by_text("Link anyway?")).to_be_visible()
    page.get_by_role("button", name="Link anyway").click()
    expect(page.get_by_text("Key linked.")).to_be_visible()
    assert EncryptionKey.objects.filter(organization=org, key_ref=arn).exists()
