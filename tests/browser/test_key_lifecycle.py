"""Browser: an org admin replaces the key, then watches a re-wrap's progress update itself (htmx polling)."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from devtools import local_kms
from encryption_keys import services
from encryption_keys.lifecycle import replace_key, rewrap_data_keys
from encryption_keys.lifecycle.models import RewrapJob, RewrapState
from encryption_keys.models import DataKey
from tests import factories
from tests.testapp.models import SealedNote

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("local_kms")]
SECRET = "lifecycle-browser-secret-9d2e"


def customer_key() -> str:
    arn = local_kms.create_key(region="us-west-2", multi_region=True)
    local_kms.replicate_key(arn, to_region="us-east-2")
    return arn


def test_replace_key_then_watch_the_rewrap_finish_live(page, browser_login, settings, org, cmek):
    settings.KEY_REWRAP_SETTLE_SECONDS = 0
    admin = factories.make_role_user(org, "org_admin")
    key = services.link_key(organization=org, region="us", key_ref=cmek, name="Acme US key", actor=admin).key
    for scope in range(3):
        SealedNote.objects.create(organization=org, scope_ref=f"s{scope}", text=SECRET)
    second = customer_key()
    browser_login(admin)

    page.goto(reverse("encryption_key_detail", args=[key.pk]))
    page.get_by_role("link", name="Replace key").click()
    page.get_by_label("Key reference").fill(second)
    page.get_by_role("button", name="Replace key").click()
    page.wait_for_url(re.compile(r"/organization/encryption-keys/(replacements/\d+|[0-9a-f-]{36})/$"))
    job = RewrapJob.objects.get()
    assert (job.state, job.done) == (RewrapState.COMPLETED, 3)
    assert set(DataKey.objects.values_list("wrapping_key_ref", flat=True)) == {second}

    page.goto(reverse("rewrap_job_detail", args=[job.pk]))
    progress = page.locator("#rewrap-progress")
    expect(progress.get_by_text("Completed", exact=True)).to_be_visible()
    expect(progress).to_contain_text("3 of 3 data keys re-wrapped")
    expect(progress.locator("progress")).to_have_attribute("value", "100")

    # A second replacement, recorded but not run yet: its page polls, and shows the run finishing without a reload.
    third = replace_key(organization=org, region="us", new_key_ref=customer_key(), actor=admin, start=False)
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


WORKER = {"KEY_REWRAP_CONCURRENCY": "1", "KEY_REWRAP_COMMIT_EVERY": "1"}  # progress moves one data key at a time
PROGRESS_SEEN = """() => {
    window.progressSeen = [];
    document.body.addEventListener("htmx:afterSwap", () => {
        const bar = document.querySelector("#key-replacements progress");
        window.progressSeen.push(bar ? Number(bar.value) : null);
    });
}"""


def test_the_key_page_shows_a_replacement_run_by_a_worker_reach_100_percent(
        page, browser_login, org, cmek, django_processes):
    """The re-wrap runs in a real `db_worker` process on the live server's database (a file on SQLite, the
    test database on PostgreSQL); the key page's replacements region polls until the job is done."""
    admin = factories.make_role_user(org, "org_admin")
    key = services.link_key(organization=org, region="us", key_ref=cmek, name="Acme US key", actor=admin).key
    for scope in range(5):
        SealedNote.objects.create(organization=org, scope_ref=f"s{scope}", text=SECRET)
    second = customer_key()
    browser_login(admin)

    page.goto(reverse("encryption_key_replace", args=[key.pk]))
    page.get_by_label("Key reference").fill(second)
    page.get_by_role("button", name="Replace key").click()
    page.wait_for_url(re.compile(rf"/organization/encryption-keys/{key.pk}/$"))
    job = RewrapJob.objects.get()
    assert (job.state, job.done, job.total) == (RewrapState.PENDING, 0, 5)  # queued: no worker runs yet

    region = page.locator("#key-replacements")
    expect(region.get_by_role("heading", name="Latest replacement Pending")).to_be_visible()
    expect(region).to_have_attribute("hx-trigger", "every 2s")
    expect(region.locator("progress")).to_have_attribute("value", "0")
    expect(region.get_by_role("link", name=f"Open key replacement #{job.pk}")).to_have_attribute(
        "href", reverse("rewrap_job_detail", args=[job.pk]))
    payload_keys = page.locator('#key-inventory tr[data-purpose="debugger.payload"] td').nth(1)
    expect(payload_keys).to_have_text("0")  # all 5 still under the replaced key
    page.evaluate("window.sameDocument = true")
    page.evaluate(PROGRESS_SEEN)

    django_processes.worker("worker-1", **WORKER)
    django_processes.wait_until(
        lambda: RewrapJob.objects.filter(pk=job.pk, state=RewrapState.COMPLETED).exists(), what="the job finished")
    expect(region.get_by_role("heading", name="Latest replacement Completed")).to_be_visible(timeout=30_000)
    expect(region.locator("progress")).to_have_attribute("value", "100")
    expect(region.locator(".encryption-keys-replacement-figures")).to_contain_text(
        "5 of 5 data keys re-wrapped (100%)")
    expect(region).not_to_have_attribute("hx-trigger", re.compile(".*"))  # polling stopped
    expect(region.locator("tr[data-job]")).to_contain_text("5 of 5")
    expect(payload_keys).to_have_text("5")  # the inventory moved with them, out of band
    seen = page.evaluate("window.progressSeen")
    assert seen and seen[-1] == 100 and seen == sorted(seen), seen  # it only ever moved forward, by polling
    assert page.evaluate("window.sameDocument") is True  # swapped in place, never reloaded
    assert set(DataKey.objects.values_list("wrapping_key_ref", flat=True)) == {second}
    assert SECRET not in page.content()
    assert page.js_errors == []
