"""Key replacements seen from the key page (live progress, history, linked vs replaced) and the organization's
list of replacements (scoping, roles, pagination, empty state)."""

import re
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from devtools import local_kms
from encryption_keys import services
from encryption_keys.lifecycle import replace_key, rewrap_data_keys
from encryption_keys.lifecycle.models import RewrapJob, RewrapState
from encryption_keys.models import EncryptionKey
from tests import factories
from tests.testapp.models import SealedNote

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
SECRET = "card 4111 1111 1111 1111"


@pytest.fixture
def notes(org, linked_key):
    for scope in range(3):
        SealedNote.objects.create(organization=org, scope_ref=f"s{scope}", text=SECRET)


def another_key() -> str:
    arn = local_kms.create_key(region="us-west-2", multi_region=True)
    local_kms.replicate_key(arn, to_region="us-east-2")
    return arn


def key_page(key):
    return reverse("encryption_key_detail", args=[key.pk])


def region_url(key):
    return reverse("encryption_key_replacements", args=[key.pk])


def section(html: str, element_id: str) -> str:
    """The outer HTML of the <section> with this id (sections do not nest on these pages)."""
    match = re.search(rf'<section[^>]*id="{element_id}".*?</section>', html, re.S)
    assert match, f"no section #{element_id}"
    return match.group(0)


# --- live progress on the key page -------------------------------------------------------------------------


def test_the_key_page_polls_a_running_replacement_until_it_finishes(org, org_admin, linked_key, new_cmek, notes,
                                                                     login):
    job = replace_key(organization=org, region="us", new_key_ref=new_cmek, actor=org_admin, start=False)
    client = login(org_admin)

    html = client.get(key_page(linked_key)).content.decode()
    region = section(html, "key-replacements")
    assert f'hx-get="{region_url(linked_key)}"' in region and 'hx-trigger="every 2s"' in region
    assert 'hx-swap="outerHTML"' in region and '<progress value="0" max="100"' in region
    assert f'href="{reverse("rewrap_job_detail", args=[job.pk])}"' in region
    assert ">Pending</span>" in region

    RewrapJob.objects.filter(pk=job.pk).update(state=RewrapState.RUNNING, done=1, failed=1)
    fragment = client.get(region_url(linked_key), headers=HTMX)
    body = fragment.content.decode()
    assert fragment.status_code == 200 and "<html" not in body
    assert body.lstrip().startswith('<section class="card" id="key-replacements"')
    assert 'hx-trigger="every 2s"' in body and '<progress value="67" max="100"' in body
    assert "<strong>1</strong> of 3 data keys re-wrapped,\n      <strong>1</strong> could not be (67%)" in body
    assert ">Running</span>" in body

    RewrapJob.objects.filter(pk=job.pk).update(state=RewrapState.PENDING, done=0, failed=0)
    rewrap_data_keys(RewrapJob.objects.get(pk=job.pk))
    body = client.get(region_url(linked_key), headers=HTMX).content.decode()
    assert "hx-trigger" not in body and "hx-get" not in body  # polling stops with the finished fragment
    assert '<progress value="100" max="100"' in body and "<strong>3</strong> of 3 data keys re-wrapped" in body
    assert ">Completed</span>" in body and "updates itself" not in body
    # The inventory below moves with the data keys: updated out of band, 3 data keys now under the new key.
    inventory = section(body, "key-inventory")
    assert inventory.startswith('<section class="card" id="key-inventory" hx-swap-oob="true">')
    assert re.search(r'data-purpose="debugger.payload">\s*<td>[^<]+</td><td>3</td>', inventory)
    assert re.search(r'data-purpose="debugger.payload">\s*<td>[^<]+</td><td>0</td>', section(html, "key-inventory"))
    assert "hx-swap-oob" not in html
    assert SECRET not in html + body


def test_the_replacements_region_without_js_is_the_key_page(login, org_admin, linked_key):
    response = login(org_admin).get(region_url(linked_key))
    assert response.status_code == 302 and response["Location"] == key_page(linked_key) + "#key-replacements"


def test_a_key_never_replaced_does_not_poll(login, org_admin, linked_key):
    html = login(org_admin).get(key_page(linked_key)).content.decode()
    region = section(html, "key-replacements")
    assert "has not been replaced" in region and "hx-trigger" not in region
    assert "<dt>Replaced</dt>" not in html


def test_the_replacements_region_is_scoped_and_needs_key_rights(login, org, org_admin, other_org_admin, linked_key):
    assert login(other_org_admin).get(region_url(linked_key), headers=HTMX).status_code == 404
    cp_admin = factories.make_role_user(org, "cp_admin")
    assert login(cp_admin).get(region_url(linked_key), headers=HTMX).status_code == 403
    viewer = factories.make_role_user(org, "org_admin_read_only")
    assert login(viewer).get(region_url(linked_key), headers=HTMX).status_code == 200


# --- history, linked vs replaced ---------------------------------------------------------------------------


def test_history_lists_each_replacement_old_to_new_with_counts(org, org_admin, linked_key, new_cmek, notes, login):
    first_arn = linked_key.key_ref
    local_kms.disable_key(first_arn)  # the first replacement cannot re-wrap: 3 failures
    try:
        first = replace_key(organization=org, region="us", new_key_ref=new_cmek, actor=org_admin)
    finally:
        local_kms.enable_key(first_arn)
    assert (first.state, first.failed) == (RewrapState.COMPLETED_WITH_FAILURES, 3)
    third_arn = another_key()
    second = replace_key(organization=org, region="us", new_key_ref=third_arn, actor=None)

    html = login(org_admin).get(key_page(linked_key)).content.decode()
    rows = re.findall(r'<tr data-job="(\d+)">(.*?)</tr>', section(html, "key-replacements"), re.S)
    assert [int(pk) for pk, _ in rows] == [second.pk, first.pk]  # newest first
    newest, oldest = rows[0][1], rows[1][1]
    first_url, second_url = (reverse("rewrap_job_detail", args=[job.pk]) for job in (first, second))
    assert f'<code class="encryption-keys-arn">{new_cmek}</code> →\n' in newest and third_arn in newest
    assert "platform operator" in newest and f'href="{second_url}">#{second.pk}</a>' in newest
    assert "<td>0 of 0</td>" in newest and ">Completed</span>" in newest  # nothing was left under the 2nd key
    assert f'<code class="encryption-keys-arn">{first_arn}</code> →' in oldest and new_cmek in oldest
    assert org_admin.email in oldest and "<td>0 of 3</td>" in oldest
    assert f'<a href="{first_url}">3</a>' in oldest and ">Completed with failures</span>" in oldest


def test_linked_is_the_first_link_and_replaced_the_latest_replacement(org, org_admin, linked_key, new_cmek, login):
    linked_on = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    EncryptionKey.objects.filter(pk=linked_key.pk).update(linked_at=linked_on, created_at=linked_on)
    first = replace_key(organization=org, region="us", new_key_ref=new_cmek, actor=org_admin)
    RewrapJob.objects.filter(pk=first.pk).update(created_at=datetime(2026, 2, 3, 4, 5, tzinfo=UTC))
    admin_two = factories.make_role_user(org, "org_admin")
    latest = replace_key(organization=org, region="us", new_key_ref=another_key(), actor=admin_two)

    key = EncryptionKey.objects.get()
    assert key.pk == linked_key.pk and key.key_ref == latest.new_key_ref  # one row; its ARN moves on
    assert key.linked_at == linked_on and key.linked_by == org_admin
    html = login(org_admin).get(key_page(key)).content.decode()
    assert f"<dt>Linked</dt><dd>2026-01-02 03:04 by {org_admin.email}</dd>" in html
    replaced = re.search(r'<dt>Replaced</dt><dd class="encryption-keys-replaced">(.*?)</dd>', html, re.S).group(1)
    assert f'{latest.created_at:%Y-%m-%d %H:%M}</time>' in replaced and admin_two.email in replaced
    assert f'href="{reverse("rewrap_job_detail", args=[latest.pk])}"' in replaced
    assert "2026-02-03" not in replaced


def test_a_key_linked_again_after_unlinking_has_no_earlier_replacements(org, org_admin, linked_key, new_cmek, login):
    replace_key(organization=org, region="us", new_key_ref=new_cmek, actor=org_admin)
    services.unlink_key(key=EncryptionKey.objects.get(), actor=org_admin)
    again = services.link_key(organization=org, region="us", key_ref=another_key(), name="again", actor=org_admin).key
    html = login(org_admin).get(key_page(again)).content.decode()
    assert "has not been replaced" in html and "<dt>Replaced</dt>" not in html
    assert RewrapJob.objects.count() == 1  # still on the organization's list of replacements
    assert new_cmek in login(org_admin).get(reverse("rewrap_job_list")).content.decode()


# --- the organization's replacements -----------------------------------------------------------------------


def make_jobs(org, count, *, region="us", **fields):
    return [RewrapJob.objects.create(organization=org, region=region, old_key_ref=f"arn:old:{n}",
                                     new_key_ref=f"arn:new:{n}", **fields) for n in range(count)]


def job_rows(html):
    return [int(pk) for pk in re.findall(r'<tr data-job="(\d+)">', html)]


def test_the_list_shows_the_organizations_replacements_newest_first(org, org_admin, linked_key, new_cmek, notes,
                                                                     login):
    done = replace_key(organization=org, region="us", new_key_ref=new_cmek, actor=org_admin)
    running = make_jobs(org, 1, region="eu", state=RewrapState.RUNNING, total=4, done=1)[0]
    html = login(org_admin).get(reverse("rewrap_job_list")).content.decode()
    assert job_rows(html) == [running.pk, done.pk]
    row = re.search(rf'<tr data-job="{done.pk}">(.*?)</tr>', html, re.S).group(1)
    assert f'<a href="{reverse("rewrap_job_detail", args=[done.pk])}">#{done.pk}</a>' in row
    assert '<span class="badge ok">Completed</span>' in row and '<progress value="100" max="100"' in row
    assert "3 of 3 re-wrapped" in row and org_admin.email in row and new_cmek in row
    row = re.search(rf'<tr data-job="{running.pk}">(.*?)</tr>', html, re.S).group(1)
    assert '<span class="badge ">Running</span>' in row and '<progress value="25" max="100"' in row
    assert SECRET not in html


def test_the_list_filters_by_region(org, org_admin, login):
    us, eu = make_jobs(org, 1)[0], make_jobs(org, 1, region="eu")[0]
    client = login(org_admin)
    assert job_rows(client.get(reverse("rewrap_job_list"), {"region": "eu"}).content.decode()) == [eu.pk]
    assert job_rows(client.get(reverse("rewrap_job_list"), {"region": "us"}).content.decode()) == [us.pk]
    assert job_rows(client.get(reverse("rewrap_job_list"), {"region": "xx"}).content.decode()) == [eu.pk, us.pk]


def test_the_list_paginates(org, org_admin, login):
    jobs = make_jobs(org, 27)
    client = login(org_admin)
    first = client.get(reverse("rewrap_job_list")).content.decode()
    assert job_rows(first) == [job.pk for job in reversed(jobs)][:25]
    assert "Page 1 of 2 · 27 in all" in first and 'href="?page=2" rel="next"' in first
    second = client.get(reverse("rewrap_job_list"), {"page": 2, "region": "us"}).content.decode()
    assert job_rows(second) == [jobs[1].pk, jobs[0].pk]
    assert 'href="?page=1&amp;region=us" rel="prev"' in second


def test_the_list_has_an_empty_state(org_admin, login):
    html = login(org_admin).get(reverse("rewrap_job_list")).content.decode()
    assert "No key replacements yet" in html and "<table" not in html


def test_the_list_is_reachable_from_the_keys_list_and_the_key_page(login, org_admin, linked_key):
    client = login(org_admin)
    assert f'href="{reverse("rewrap_job_list")}"' in client.get(reverse("encryption_key_list")).content.decode()
    assert f'href="{reverse("rewrap_job_list")}?region=us"' in client.get(key_page(linked_key)).content.decode()


def test_another_organization_sees_none_of_these_replacements(org, other_org, other_org_admin, login):
    ours = make_jobs(org, 2)
    theirs = make_jobs(other_org, 1)
    client = login(other_org_admin)
    assert job_rows(client.get(reverse("rewrap_job_list")).content.decode()) == [theirs[0].pk]
    for job in ours:
        assert client.get(reverse("rewrap_job_detail", args=[job.pk])).status_code == 404


@pytest.mark.parametrize(("role", "status"), [("org_admin_read_only", 200), ("cp_admin", 403), ("member", 403)])
def test_the_list_needs_key_view(org, login, role, status):
    make_jobs(org, 1)
    response = login(factories.make_role_user(org, role)).get(reverse("rewrap_job_list"))
    assert response.status_code == status
    assert (b"arn:old:0" in response.content) is (status == 200)
