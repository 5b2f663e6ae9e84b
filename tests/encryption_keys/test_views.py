"""The Encryption Keys pages: full pages and htmx fragments, roles, organization isolation, banners."""

import re
import sys
import types

import pytest
from django.urls import reverse

from devtools import local_kms as kms_admin
from encryption_keys import services
from encryption_keys.models import EncryptionKey, KeyStatus
from konnect_admin.models import AuditEvent
from tests import factories
from tests.testapp.models import SealedNote

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
SECRET = "do-not-show-me-0451"


def form_data(arn, **extra):
    return {"name": "Acme US", "key_ref": arn, "description": "prod", "region": "us", **extra}


@pytest.fixture
def linked(org, org_admin, cmek):
    return services.link_key(organization=org, region="us", key_ref=cmek, name="Acme US", actor=org_admin).key


@pytest.fixture
def other_key(other_org, other_org_admin):
    arn = kms_admin.create_key(region="us-west-2", multi_region=True)
    kms_admin.replicate_key(arn, to_region="us-east-2")
    return services.link_key(organization=other_org, region="us", key_ref=arn, name="Globex", actor=other_org_admin).key


# --- list ---------------------------------------------------------------------------------------------------


def test_pages_need_a_login(client, linked):
    for url in (reverse("encryption_key_list"), reverse("encryption_key_link"),
                reverse("encryption_key_detail", args=[linked.pk])):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_empty_state_explains_cmek_and_offers_link_key(login, org_admin, settings):
    settings.DATAKEY_CACHE_TTL = 42
    response = login(org_admin).get(reverse("encryption_key_list"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Protect your data with your own key" in body and "customer-managed encryption key" in body
    assert f'href="{reverse("encryption_key_link")}"' in body
    assert "A revoked key stops decrypting within 42 s" in body


def test_list_shows_status_last_check_and_what_the_key_protects(login, org, org_admin, linked):
    SealedNote.objects.create(organization=org, scope_ref="session-1", text=SECRET)
    SealedNote.objects.create(organization=org, scope_ref="session-2", text=SECRET)
    body = login(org_admin).get(reverse("encryption_key_list")).content.decode()
    assert "Acme US" in body and linked.key_ref in body
    assert 'class="badge encryption-keys-healthy">Healthy' in body
    assert "ago</time>" in body  # last check
    assert "Debugger payload captures: 2 data keys (2 debug sessions)" in body
    assert "Config Store secrets: 0 data keys" in body
    assert SECRET not in body


def test_read_only_admin_sees_keys_without_link_key(login, org, linked):
    response = login(factories.make_role_user(org, "org_admin_read_only")).get(reverse("encryption_key_list"))
    assert response.status_code == 200
    assert "Acme US" in response.content.decode()
    assert reverse("encryption_key_link") not in response.content.decode()


@pytest.mark.parametrize("role", ["cp_admin_team", "cp_viewer", "member"])
def test_other_roles_get_403(login, org, role, linked):
    client = login(factories.make_role_user(org, role))
    assert client.get(reverse("encryption_key_list")).status_code == 403
    assert client.get(reverse("encryption_key_detail", args=[linked.pk])).status_code == 403
    assert client.get(reverse("encryption_key_link")).status_code == 403


def test_org_settings_menu_and_dashboard_card(login, org_admin, linked):
    body = login(org_admin).get(reverse("dashboard")).content.decode()
    assert f'<a href="{reverse("encryption_key_list")}">Encryption Keys</a>' in body
    assert "encryption-keys-card" in body and 'encryption-keys-healthy">Healthy' in body


# --- link ---------------------------------------------------------------------------------------------------


def test_link_form_shows_the_policy_statement_to_copy(login, org, org_admin, settings):
    settings.PLATFORM_KMS_PRINCIPAL = "arn:aws:iam::999988887777:role/konnect"
    body = login(org_admin).get(reverse("encryption_key_link")).content.decode()
    for label in ("Name", "Key reference", "arn:aws:kms:&lt;aws-region&gt;", "Description", "Konnect region"):
        assert label in body
    assert "arn:aws:iam::999988887777:role/konnect" in body
    assert f"&quot;kms:EncryptionContext:konnect:org&quot;: &quot;{org.pk}&quot;" in body
    assert "kms:ReEncrypt*" in body and "<pre id=\"key-policy-json\"" in body
    assert "encryption_keys/copy.js" in body and "<script>" not in body


def test_connect_full_page_links_and_shows_the_checklist(login, org, org_admin, cmek):
    response = login(org_admin).post(reverse("encryption_key_link"), form_data(cmek))
    body = response.content.decode()
    key = EncryptionKey.objects.get(organization=org)
    assert response.status_code == 201
    assert "<html" in body and "Key linked." in body
    assert body.count('data-verdict="pass"') == 10
    assert reverse("encryption_key_detail", args=[key.pk]) in body
    assert (key.name, key.description, key.region, key.key_ref) == ("Acme US", "prod", "us", cmek)


def test_connect_with_htmx_swaps_in_only_the_checklist(login, org, org_admin, cmek):
    response = login(org_admin).post(reverse("encryption_key_link"), form_data(cmek), headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 201
    assert "<html" not in body and body.lstrip().startswith('<div id="key-link"')
    assert "Verification checklist" in body and "Key linked." in body
    assert EncryptionKey.objects.filter(organization=org).exists()


def test_failed_verification_htmx_is_422_with_the_checklist_and_the_form(login, org_admin, cmek):
    kms_admin.disable_key(cmek)
    response = login(org_admin).post(reverse("encryption_key_link"), form_data(cmek), headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 422
    assert "<html" not in body and "The key was not linked" in body
    assert 'data-check="key_state" data-verdict="fail"' in body
    assert 'data-check="round_trip" data-verdict="not_run"' in body and ">Not run</span>" in body
    assert "Enable the key in AWS KMS." in body
    assert 'name="key_ref"' in body and cmek in body  # the form stays, filled in
    assert not EncryptionKey.objects.exists()


def test_failed_verification_without_js_is_a_400_full_page(login, org_admin):
    response = login(org_admin).post(reverse("encryption_key_link"),
                                     form_data("arn:aws:kms:us-west-2:123456789012:alias/prod"))
    body = response.content.decode()
    assert response.status_code == 400 and "<html" in body
    assert "Alias ARNs are not accepted" in body


def test_form_errors_are_422_for_htmx(login, org_admin, cmek):
    response = login(org_admin).post(reverse("encryption_key_link"), form_data(cmek, name=""), headers=HTMX)
    assert response.status_code == 422
    assert "This field is required." in response.content.decode()
    assert not EncryptionKey.objects.exists()


def test_a_second_key_for_the_region_is_a_form_error(login, org_admin, linked):
    other = kms_admin.create_key(region="us-east-2", multi_region=True)
    response = login(org_admin).post(reverse("encryption_key_link"), form_data(other), headers=HTMX)
    assert response.status_code == 422
    assert "A key is already linked for this region" in response.content.decode()
    assert EncryptionKey.objects.get().key_ref == linked.key_ref


@pytest.mark.parametrize("headers", [HTMX, {}])
def test_globex_linking_acmes_key_is_a_form_error_naming_no_one(login, org, other_org, other_org_admin, linked,
                                                                 headers, kms_calls):
    response = login(other_org_admin).post(reverse("encryption_key_link"), form_data(linked.key_ref, name="Globex US"),
                                                  headers=headers)
    body = response.content.decode()
    assert response.status_code == (422 if headers else 400)
    assert "already in use by another organization" in body and 'aria-invalid="true"' in body
    assert "Acme" not in body and str(org.pk) not in body
    assert not EncryptionKey.objects.filter(organization=other_org).exists()
    assert kms_calls(organization=other_org).count() == 0


def test_globex_replacing_its_key_with_acmes_is_a_form_error(login, org, other_org_admin, linked, other_key):
    url = reverse("encryption_key_replace", args=[other_key.pk])
    response = login(other_org_admin).post(url, form_data(linked.key_ref, name="Globex US"), headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 422
    assert "already in use by another organization" in body and "Acme" not in body
    assert EncryptionKey.objects.get(pk=other_key.pk).key_ref == other_key.key_ref


@pytest.mark.parametrize("role", ["org_admin_read_only", "cp_admin_team", "member"])
def test_non_admins_cannot_link_through_the_form(login, org, cmek, role, kms_calls):
    response = login(factories.make_role_user(org, role)).post(reverse("encryption_key_link"), form_data(cmek))
    assert response.status_code == 403
    assert not EncryptionKey.objects.exists() and kms_calls().count() == 0


# --- detail, check now, usage log ----------------------------------------------------------------------


def test_detail_shows_metadata_history_inventory_and_usage_log(login, org, org_admin, linked):
    SealedNote.objects.create(organization=org, text=SECRET)
    body = login(org_admin).get(reverse("encryption_key_detail", args=[linked.pk])).content.decode()
    assert linked.key_ref in body and "SYMMETRIC_DEFAULT" in body and "us-east-2, us-west-2" in body
    assert "Automatic rotation</dt><dd class=\"encryption-keys-rotation\">on" in body
    assert "Linked after verification." in body  # status history
    assert 'data-purpose="debugger.payload"' in body and "<td>1 debug session</td>" in body
    for operation in ("DescribeKey", "GetKeyRotationStatus", "GenerateDataKey", "Decrypt"):
        assert f"<td>{operation}</td>" in body
    assert "<td>verification</td>" in body and "<td>debugger.payload</td>" in body
    assert "Check now" in body and "Replace key" in body and "Unlink" in body
    assert SECRET not in body


def test_read_only_admin_sees_the_key_page_without_actions(login, org, linked):
    response = login(factories.make_role_user(org, "org_admin_read_only")).get(
        reverse("encryption_key_detail", args=[linked.pk]))
    body = response.content.decode()
    assert response.status_code == 200 and linked.key_ref in body
    assert "Check now" not in body and reverse("encryption_key_unlink", args=[linked.pk]) not in body


def test_usage_log_filter_htmx_returns_only_the_log(login, org_admin, linked):
    response = login(org_admin).get(reverse("encryption_key_detail", args=[linked.pk]),
                                    {"operation": "Decrypt"}, headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section class="card" id="key-usage">') and "<html" not in body
    assert "<td>Decrypt</td>" in body and "<td>DescribeKey</td>" not in body


def test_usage_log_filters_by_outcome_and_paginates(login, org, org_admin, linked, cmek, local_kms):
    for index in range(30):
        SealedNote.objects.create(organization=org, scope_ref=f"s{index}", text=SECRET)
    kms_admin.disable_key(cmek)
    services.check_key_health(key=linked)
    client = login(org_admin)
    url = reverse("encryption_key_detail", args=[linked.pk])
    page_one = client.get(url, {"operation": "GenerateDataKey"}).content.decode()
    assert "Page 1 of 2" in page_one and page_one.count("<td>GenerateDataKey</td>") == 25
    page_two = client.get(url, {"operation": "GenerateDataKey", "page": 2}).content.decode()
    assert page_two.count("<td>GenerateDataKey</td>") == 6  # 30 notes + the verification
    failed = client.get(url, {"outcome": "ok"}, headers=HTMX).content.decode()
    assert "key_disabled" not in failed.split("<tbody>")[1]
    # With no JS the same filters work as a full page.
    assert "<html" in client.get(url, {"outcome": "ok"}).content.decode()


def test_check_now_htmx_swaps_the_status_region(login, org_admin, linked, cmek):
    kms_admin.disable_key(cmek)
    response = login(org_admin).post(reverse("encryption_key_check", args=[linked.pk]), headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section class="card" id="key-status"') and "<html" not in body
    assert "status changed from" in body and 'encryption-keys-disabled">Disabled' in body
    assert EncryptionKey.objects.get().status == KeyStatus.DISABLED
    assert AuditEvent.objects.filter(action="encryption_key.checked").count() == 1


def oob_banners(body: str) -> str:
    """The inside of the out-of-band banner region of an htmx response (fails if there is none)."""
    match = re.search(r'<div id="org-banners" hx-swap-oob="true">(.*?)\n</div>', body, re.S)
    assert match, "no out-of-band banner region"
    return match.group(1)


def test_check_now_updates_the_organization_banner_out_of_band(login, org_admin, linked, cmek):
    client = login(org_admin)
    page = client.get(reverse("encryption_key_detail", args=[linked.pk])).content.decode()
    assert '<div id="org-banners">' in page and "hx-swap-oob" not in page  # the region the fragment replaces

    kms_admin.disable_key(cmek)
    body = client.post(reverse("encryption_key_check", args=[linked.pk]), headers=HTMX).content.decode()
    assert body.lstrip().startswith('<section class="card" id="key-status"')
    banners = oob_banners(body)
    assert banners.count('role="alert"') == 1 and "banner banner-error" in banners
    assert "Encryption key “Acme US” (US): disabled." in banners

    kms_admin.enable_key(cmek)
    body = client.post(reverse("encryption_key_check", args=[linked.pk]), headers=HTMX).content.decode()
    assert "status changed from" in body and oob_banners(body).strip() == ""


def test_other_fragments_leave_the_banner_region_alone(login, org_admin, linked, cmek):
    kms_admin.disable_key(cmek)
    services.check_key_health(key=linked)
    body = login(org_admin).get(reverse("encryption_key_detail", args=[linked.pk]), headers=HTMX).content.decode()
    assert "org-banners" not in body and "banner" not in body


def test_check_now_without_js_redirects_to_the_key(login, org_admin, linked):
    response = login(org_admin).post(reverse("encryption_key_check", args=[linked.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("encryption_key_detail", args=[linked.pk])


def test_read_only_admin_cannot_check(login, org, linked):
    client = login(factories.make_role_user(org, "org_admin_read_only"))
    assert client.post(reverse("encryption_key_check", args=[linked.pk]), headers=HTMX).status_code == 403
    assert not AuditEvent.objects.filter(action="encryption_key.checked").exists()


# --- organization isolation -----------------------------------------------------------------------------


def test_another_organizations_key_is_404_everywhere(login, org_admin, other_key):
    client = login(org_admin)
    for name in ("encryption_key_detail", "encryption_key_unlink", "encryption_key_replace"):
        assert client.get(reverse(name, args=[other_key.pk])).status_code == 404
    for name in ("encryption_key_check", "encryption_key_unlink", "encryption_key_replace"):
        assert client.post(reverse(name, args=[other_key.pk]), form_data("x")).status_code == 404
    assert EncryptionKey.objects.filter(pk=other_key.pk, status=KeyStatus.HEALTHY).exists()
    assert "Globex" not in client.get(reverse("encryption_key_list")).content.decode()


# --- unlink, replace -------------------------------------------------------------------------------------


def test_unlink_confirmation_states_the_consequences(login, org_admin, linked):
    body = login(org_admin).get(reverse("encryption_key_unlink", args=[linked.pk])).content.decode()
    assert "encrypted under the <strong>platform key</strong>" in body
    assert "stays encrypted under it" in body and linked.key_ref in body
    assert EncryptionKey.objects.filter(pk=linked.pk).exists()  # GET changes nothing


def test_unlink_full_page_and_htmx(login, org, org_admin, linked):
    client = login(org_admin)
    response = client.post(reverse("encryption_key_unlink", args=[linked.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("encryption_key_list")
    assert not EncryptionKey.objects.exists()
    assert AuditEvent.objects.filter(action="encryption_key.unlinked", actor=org_admin).count() == 1
    again = services.link_key(organization=org, region="us", key_ref=linked.key_ref, name="again", actor=org_admin).key
    response = client.post(reverse("encryption_key_unlink", args=[again.pk]), headers=HTMX)
    assert response.status_code == 200 and response["HX-Redirect"] == reverse("encryption_key_list")


def test_read_only_admin_cannot_unlink(login, org, linked):
    response = login(factories.make_role_user(org, "org_admin_read_only")).post(
        reverse("encryption_key_unlink", args=[linked.pk]))
    assert response.status_code == 403 and EncryptionKey.objects.filter(pk=linked.pk).exists()


def test_replace_without_the_lifecycle_module_is_a_clear_503(login, org_admin, linked, monkeypatch):
    monkeypatch.setitem(sys.modules, "encryption_keys.lifecycle", None)
    response = login(org_admin).get(reverse("encryption_key_replace", args=[linked.pk]))
    assert response.status_code == 503
    assert "Key replacement is not available" in response.content.decode()
    response = login(org_admin).post(reverse("encryption_key_replace", args=[linked.pk]), form_data("x"))
    assert response.status_code == 503 and EncryptionKey.objects.get().key_ref == linked.key_ref


def test_replace_routes_to_the_lifecycle_service(login, org, org_admin, linked, monkeypatch):
    calls = []
    lifecycle = types.ModuleType("encryption_keys.lifecycle")
    lifecycle.replace_key = lambda **kwargs: calls.append(kwargs)
    monkeypatch.setitem(sys.modules, "encryption_keys.lifecycle", lifecycle)
    client = login(org_admin)
    url = reverse("encryption_key_replace", args=[linked.pk])
    assert "Replace key" in client.get(url).content.decode()
    same = client.post(url, form_data(linked.key_ref), headers=HTMX)
    assert same.status_code == 422 and "already linked" in same.content.decode() and calls == []
    new_arn = "arn:aws:kms:us-west-2:123456789012:key/mrk-0123456789abcdef0123456789abcdef"
    response = client.post(url, form_data(new_arn), headers=HTMX)
    assert response.status_code == 200 and response["HX-Redirect"] == reverse("encryption_key_detail", args=[linked.pk])
    assert calls == [{"organization": org, "region": "us", "actor": org_admin, "new_key_ref": new_arn,
                      "name": "Acme US", "description": "prod"}]


def test_replace_through_the_key_lifecycle_module(login, org_admin, linked):
    new_arn = kms_admin.create_key(region="us-west-2", multi_region=True)
    kms_admin.replicate_key(new_arn, to_region="us-east-2")
    response = login(org_admin).post(reverse("encryption_key_replace", args=[linked.pk]), form_data(new_arn))
    assert response.status_code == 302 and response["Location"] == reverse("encryption_key_detail", args=[linked.pk])
    assert EncryptionKey.objects.get().key_ref == new_arn
    assert AuditEvent.objects.filter(action="encryption_key.replaced", actor=org_admin).count() == 1


def test_replace_shows_the_checklist_when_verification_fails(login, org, org_admin, linked, monkeypatch):
    from encryption_keys.verification import verify_key

    def replace_key(**kwargs):
        raise services.KeyVerificationFailed(verify_key(organization=org, region="us", key_ref=kwargs["new_key_ref"]))

    lifecycle = types.ModuleType("encryption_keys.lifecycle")
    lifecycle.replace_key = replace_key
    monkeypatch.setitem(sys.modules, "encryption_keys.lifecycle", lifecycle)
    response = login(org_admin).post(reverse("encryption_key_replace", args=[linked.pk]),
                                     form_data("arn:aws:kms:us-west-2:123456789012:alias/x"), headers=HTMX)
    assert response.status_code == 422
    assert 'data-check="arn_syntax" data-verdict="fail"' in response.content.decode()


# --- banner ---------------------------------------------------------------------------------------------


def test_banner_on_every_page_when_the_key_is_disabled(login, org, org_admin, linked, cmek):
    client = login(org_admin)
    assert 'role="alert"' not in client.get(reverse("dashboard")).content.decode()
    kms_admin.disable_key(cmek)
    services.check_key_health(key=linked)
    for url in (reverse("dashboard"), reverse("control_plane_list"), reverse("encryption_key_list")):
        body = client.get(url).content.decode()
        assert "banner banner-error" in body
        assert "Encryption key “Acme US” (US): disabled." in body
        assert "Debugger payload captures, Debugger request logs and Config Store (vault) secrets" in body
        assert "Re-enable the key in AWS KMS" in body
        assert f'<a href="{reverse("encryption_key_detail", args=[linked.pk])}">Open the key</a>' in body


def test_banner_shows_the_deletion_date_and_days_left(login, org, linked, cmek):
    when = kms_admin.schedule_key_deletion(cmek, days=8)
    services.check_key_health(key=linked)
    member = factories.make_role_user(org, "member")
    body = login(member).get(reverse("dashboard")).content.decode()
    assert f"scheduled for deletion on {when:%Y-%m-%d} (8 days left)" in body
    assert "Ask an Organization Admin of your organization to cancel the key deletion" in body  # not the remedy
    assert reverse("encryption_key_detail", args=[linked.pk]) not in body  # members cannot open the key page


def test_unreachable_kms_is_a_warning_banner(login, org_admin, linked, local_kms):
    local_kms.stop()
    try:
        services.check_key_health(key=linked)
    finally:
        local_kms.start()
    body = login(org_admin).get(reverse("dashboard")).content.decode()
    assert "banner banner-warning" in body and "banner-error" not in body
    assert "kms unreachable." in body and "may be unreadable until it is reachable again" in body


def test_no_banner_for_another_organizations_key(login, org_admin, other_key, other_org):
    kms_admin.disable_key(other_key.key_ref)
    services.check_key_health(key=other_key)
    assert "banner-error" not in login(org_admin).get(reverse("dashboard")).content.decode()
