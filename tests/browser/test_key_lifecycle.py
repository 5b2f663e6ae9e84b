"""Browser: an org admin replaces the key, then watches a re-wrap's progress update itself (htmx polling)."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from encryption_keys import local_kms, services
from encryption_keys.lifecycle import replace_key, rewrap_data_keys
from encryption_keys.lifecycle.models import RewrapJob, RewrapState
from encryption_keys.models import DataKey
from tests import factories
from tests.testapp.models import SealedNote

pytestmark = pytest.mark.browser
SECRET = "lifecycle-browser-secret-9d2e"


def customer_key() -> str:
    arn = local_kms.create_key(region="us-west-2", multi_region=True)
    local_kms.replicate_key(arn, to_region="us-east-2")
    return arn


def test_replace_key_then_watch_the_rewrap_finish_live(page, browser_login, settings, org, cmek):
    settings.KEY_REWRAP_SETTLE_SECONDS = 0
    admin = factories.make_role_user(org, "org_admin")
    key = services.link_key(organization=org, region="us", key_arn=cmek, name="Acme US key", actor=admin).key
    for scope in range(3):
        SealedNote.objects.create(organization=org, scope_ref=f"s{scope}", text=SECRET)
    second = customer_key()
    browser_login(admin)

    page.goto(reverse("encryption_key_detail", args=[key.pk]))
    page.get_by_role("link", name="Replace key").click()
    page.get_by_label("Amazon Resource Name (ARN)").fill(second)
    page.get_by_role("button", name="Replace key").click()
    page.wait_for_url(re.compile(r"/organization/encryption-keys/(replacements/\d+|[0-9a-f-]{36})/$"))
    job = RewrapJob.objects.get()
    assert (job.state, job.done) == (RewrapState.COMPLETED, 3)
    assert set(DataKey.objects.values_list("wrapping_key_arn", flat=True)) == {second}

    page.goto(reverse("rewrap_job_detail", args=[job.pk]))
    progress = page.locator("#rewrap-progress")
    expect(progress.get_by_text("Completed", exact=True)).to_be_visible()
    expect(progress).to_contain_text("3 of 3 data keys re-wrapped")
    expect(progress.locator("progress")).to_have_attribute("value", "100")

    # A second replacement, recorded but not run yet: its page polls, and shows the run finishing without a reload.
    third = replace_key(organization=org, region="us", new_key_arn=customer_key(), actor=admin, start=False)
    page.goto(reverse("rewrap_job_detail", args=[third.pk]))
    progress = page.locator("#rewrap-progress")
    expect(progress.get_by_text("Pending", exact=True)).to_be_visible()
    expect(progress).to_have_attribute("hx-trigger", "every 1s")
    page.evaluate("window.sameDocument = true")
    rewrap_data_keys(third)
    expect(progress.get_by_text("Completed", exact=True)).to_be_visible(timeout=5_000)
    expect(progress).to_contain_text("3 of 3 data keys re-wrapped")
    expect(progress).not_to_have_attribute("hx-trigger", "every 1s")  # polling stopped
    assert page.evaluate("window.sameDocument") is True  # swapped in place, not reloaded
    assert SECRET not in page.content()
    assert page.js_errors == []
