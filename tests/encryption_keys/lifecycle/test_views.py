"""The re-wrap job page: full page and htmx fragment, live polling while running, outcome, failures, resume."""

import re

import pytest
from django.urls import reverse

from devtools import local_kms
from encryption_keys.lifecycle import replace_key
from encryption_keys.lifecycle.models import RewrapJob, RewrapState
from encryption_keys.models import DataKey
from tests import factories
from tests.testapp.models import SealedNote

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
SECRET = "card 4111 1111 1111 1111"


@pytest.fixture
def notes(org, linked_key):
    for scope in range(3):
        SealedNote.objects.create(organization=org, scope_ref=f"s{scope}", text=SECRET)


def url(job):
    return reverse("rewrap_job_detail", args=[job.pk])


def test_running_job_polls_every_second(org, org_admin, linked_key, new_cmek, notes, login):
    job = replace_key(organization=org, region="us", new_key_ref=new_cmek, actor=org_admin, start=False)
    client = login(org_admin)

    page = client.get(url(job))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<html" in html and "Key replacement #" in html
    assert 'hx-trigger="every 1s"' in html and f'hx-get="{url(job)}"' in html
    assert linked_key.key_ref in html and new_cmek in html
    assert '<progress value="0" max="100"' in html

    fragment = client.get(url(job), headers=HTMX)
    assert fragment.status_code == 200
    body = fragment.content.decode()
    assert "<html" not in body and "Key replacement #" not in body
    assert body.lstrip().startswith('<section id="rewrap-progress"')
    assert 'hx-trigger="every 1s"' in body and 'hx-swap="outerHTML"' in body
    assert "0</strong> of 3 data keys re-wrapped" in body
    assert SECRET not in html + body


def test_finished_job_stops_polling_and_shows_the_outcome(org, org_admin, linked_key, new_cmek, notes, login):
    job = replace_key(organization=org, region="us", new_key_ref=new_cmek, actor=org_admin)
    assert job.state == RewrapState.COMPLETED
    body = login(org_admin).get(url(job), headers=HTMX).content.decode()
    assert "hx-trigger" not in body
    assert '<progress value="100" max="100"' in body
    assert "3</strong> of 3 data keys re-wrapped" in body
    assert "Every data key the replaced key wrapped is now wrapped by the new key" in body
    assert "Retry re-wrap" not in body and "Resume re-wrap" not in body


def test_progress_shows_the_share_done(org, org_admin, linked_key, new_cmek, notes, login):
    job = replace_key(organization=org, region="us", new_key_ref=new_cmek, actor=org_admin, start=False)
    RewrapJob.objects.filter(pk=job.pk).update(state=RewrapState.RUNNING, done=2, total=3)
    body = login(org_admin).get(url(job), headers=HTMX).content.decode()
    assert '<progress value="67" max="100"' in body and 'hx-trigger="every 1s"' in body


def test_failures_are_listed_and_retry_moves_them(org, org_admin, linked_key, new_cmek, notes, login):
    local_kms.disable_key(linked_key.key_ref)
    try:
        job = replace_key(organization=org, region="us", new_key_ref=new_cmek, actor=org_admin)
    finally:
        local_kms.enable_key(linked_key.key_ref)
    client = login(org_admin)
    html = client.get(url(job)).content.decode()
    assert "Completed with failures" in html
    assert "3</strong> could not be" in html
    for data_key in DataKey.objects.all():
        assert str(data_key.pk) in html
    assert html.count("key_disabled") == 3 and "Key disabled" in html
    assert "readable only while the replaced key is usable" in html
    assert "Re-enable the replaced key in its key service" in html and "Ask an Organization Admin" not in html
    reader = login(factories.make_role_user(org, "org_admin_read_only")).get(url(job)).content.decode()
    assert "Ask an Organization Admin of your organization to re-enable the replaced key" in reader
    client = login(org_admin)
    assert f'action="{reverse("rewrap_job_resume", args=[job.pk])}"' in html

    response = client.post(reverse("rewrap_job_resume", args=[job.pk]))
    assert response.status_code == 302 and response["Location"] == url(job)
    job.refresh_from_db()
    assert (job.state, job.done, job.failed) == (RewrapState.COMPLETED, 3, 0)
    assert set(DataKey.objects.values_list("wrapping_key_ref", flat=True)) == {new_cmek}


def test_interrupted_job_offers_resume(org, org_admin, linked_key, new_cmek, notes, login):
    job = replace_key(organization=org, region="us", new_key_ref=new_cmek, actor=org_admin, start=False)
    RewrapJob.objects.filter(pk=job.pk).update(state=RewrapState.FAILED, last_error="kms_unavailable: Key service unavailable")
    html = login(org_admin).get(url(job)).content.decode()
    assert "The re-wrap stopped before the end" in html and "kms_unavailable" in html
    assert "Resume re-wrap" in html and "hx-trigger" not in html and "resume to finish." in html


def test_read_only_admin_sees_the_page_but_cannot_resume(org, org_admin, linked_key, new_cmek, notes, login):
    job = replace_key(organization=org, region="us", new_key_ref=new_cmek, actor=org_admin, start=False)
    RewrapJob.objects.filter(pk=job.pk).update(state=RewrapState.FAILED)
    client = login(factories.make_role_user(org, "org_admin_read_only"))
    html = client.get(url(job)).content.decode()
    assert "Key replacement #" in html and "Resume re-wrap" not in html
    assert re.search(r"an\s+Organization Admin of your organization can resume it\.", html)
    assert "resume to finish" not in html
    assert client.post(reverse("rewrap_job_resume", args=[job.pk])).status_code == 403
    assert RewrapJob.objects.get(pk=job.pk).state == RewrapState.FAILED


def test_members_without_key_rights_get_403(org, org_admin, linked_key, new_cmek, login):
    job = replace_key(organization=org, region="us", new_key_ref=new_cmek, actor=org_admin, start=False)
    client = login(factories.make_role_user(org, "cp_admin"))
    assert client.get(url(job)).status_code == 403


def test_other_organizations_job_is_404(org, org_admin, other_org_admin, linked_key, new_cmek, login):
    job = replace_key(organization=org, region="us", new_key_ref=new_cmek, actor=org_admin, start=False)
    client = login(other_org_admin)
    assert client.get(url(job)).status_code == 404
    assert client.post(reverse("rewrap_job_resume", args=[job.pk])).status_code == 404


def test_resume_refusal_is_a_message_not_an_error(org, org_admin, linked_key, new_cmek, notes, login):
    job = replace_key(organization=org, region="us", new_key_ref=new_cmek, actor=org_admin, start=False)
    client = login(org_admin)
    response = client.post(reverse("rewrap_job_resume", args=[job.pk]), follow=True)
    assert response.status_code == 200
    assert "still running" in response.content.decode()
    assert client.get(reverse("rewrap_job_resume", args=[job.pk])).status_code == 405
