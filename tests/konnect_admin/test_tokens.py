from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from konnect_admin import tokens
from konnect_admin.models import AuditEvent, DataPlaneToken, Organization, PersonalAccessToken
from konnect_admin.models.tokens import token_digest
from tests import factories

pytestmark = pytest.mark.django_db


def test_token_is_shown_once_and_stored_only_as_a_digest(login, org, org_admin):
    response = login(org_admin).post(reverse("access_token_create"), {"name": "terraform", "expires_in_days": "90"})
    text = response.context["new_token"]
    assert response.status_code == 201
    assert text.startswith("kpat_") and text in response.content.decode()
    token = PersonalAccessToken.objects.get()
    assert token.digest == token_digest(text) and text not in (token.digest, token.hint)
    assert token.hint == text[:12]
    again = login(org_admin).get(reverse("access_token_list"))
    assert text not in again.content.decode()
    assert AuditEvent.objects.filter(action="access_token.created").exists()


def test_authentication_accepts_active_tokens_only(org, org_admin):
    token, text = tokens.personal_access_token_create(user=org_admin, organization=org, name="ci")
    assert tokens.personal_access_token_authenticate(text) == token
    assert tokens.personal_access_token_authenticate(text + "x") is None
    assert tokens.personal_access_token_authenticate("kdpt_" + text[5:]) is None
    tokens.personal_access_token_revoke(user=org_admin, token=token)
    assert tokens.personal_access_token_authenticate(text) is None


def test_token_of_an_inactive_user_is_refused(org, org_admin):
    _token, text = tokens.personal_access_token_create(user=org_admin, organization=org, name="ci")
    org_admin.is_active = False
    org_admin.save()
    assert tokens.personal_access_token_authenticate(text) is None


def test_only_the_owner_revokes_a_token(login, org, org_admin):
    token, _text = tokens.personal_access_token_create(user=org_admin, organization=org, name="ci")
    other = factories.make_role_user(org, "org_admin")
    assert login(other).post(reverse("access_token_revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_empty_token_name_is_a_form_error(login, org_admin):
    response = login(org_admin).post(reverse("access_token_create"), {"name": ""}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert response.content.decode().lstrip().startswith('<section class="card" id="tokens">')
    assert not PersonalAccessToken.objects.exists()


def test_data_plane_tokens_need_control_plane_admin(login, org, control_plane):
    viewer = factories.make_role_user(org, "cp_viewer")
    response = login(viewer).post(reverse("data_plane_token_create", args=[control_plane.pk]), {"name": "dp-1"})
    assert response.status_code == 403
    assert not DataPlaneToken.objects.exists()


def test_control_plane_admin_creates_a_data_plane_token(login, org, control_plane):
    admin = factories.make_role_user(org, "cp_admin", control_plane)
    response = login(admin).post(
        reverse("data_plane_token_create", args=[control_plane.pk]), {"name": "dp-1", "expires_in_days": "365"},
        headers={"HX-Request": "true"},
    )
    text = response.context["section"]["new_token"]
    assert response.status_code == 201 and text.startswith("kdpt_")
    assert tokens.data_plane_token_authenticate(text).control_plane == control_plane
    assert "<html" not in response.content.decode()


def test_data_plane_token_of_another_org_is_404(login, org_admin, other_control_plane):
    response = login(org_admin).post(reverse("data_plane_token_create", args=[other_control_plane.pk]), {"name": "x"})
    assert response.status_code == 404


# --- expiry -----------------------------------------------------------------------------------------------


def test_a_token_created_without_a_lifetime_gets_the_default(org, org_admin, control_plane, settings):
    settings.ACCESS_TOKEN_DEFAULT_DAYS, settings.DATA_PLANE_TOKEN_DEFAULT_DAYS = 90, 365
    before = timezone.now()
    pat, _text = tokens.personal_access_token_create(user=org_admin, organization=org, name="ci")
    dp, _text = tokens.data_plane_token_create(actor=org_admin, control_plane=control_plane, name="dp")
    assert before + timedelta(days=90) <= pat.expires_at <= timezone.now() + timedelta(days=90)
    assert before + timedelta(days=365) <= dp.expires_at <= timezone.now() + timedelta(days=365)


@pytest.mark.parametrize("days", [0, -1, 366, 10_000])
def test_services_refuse_a_lifetime_outside_the_policy(org, org_admin, control_plane, days):
    with pytest.raises(ValidationError):
        tokens.personal_access_token_create(user=org_admin, organization=org, name="ci", expires_in_days=days)
    with pytest.raises(ValidationError):
        tokens.data_plane_token_create(actor=org_admin, control_plane=control_plane, name="dp",
                                       expires_in_days=days if days < 366 else 731)
    assert not PersonalAccessToken.objects.exists() and not DataPlaneToken.objects.exists()


def test_the_form_offers_the_lifetimes_with_the_default_selected(login, org, org_admin, control_plane):
    page = login(org_admin).get(reverse("access_token_list")).content.decode()
    select = page[page.index('<select name="expires_in_days"'):]
    select = select[:select.index("</select>")]
    assert [value for value in ("30", "90", "180", "365", "730") if f'value="{value}"' in select] == [
        "30", "90", "180", "365"]
    assert 'value="90" selected' in select
    assert '<label for="id_expires_in_days">' in page  # labelled, reachable by keyboard like any select
    detail = login(org_admin).get(reverse("control_plane_detail", args=[control_plane.pk])).content.decode()
    assert 'value="730"' in detail and 'value="365" selected' in detail


@pytest.mark.parametrize(("access", "data_plane"), [("", ""), ("400", "731"), ("abc", "abc"), ("0", "0")])
def test_a_missing_or_too_long_lifetime_is_a_form_error(login, org_admin, control_plane, access, data_plane):
    client = login(org_admin)
    response = client.post(reverse("access_token_create"), {"name": "ci", "expires_in_days": access},
                           headers={"HX-Request": "true"})
    assert response.status_code == 422 and 'id="id_expires_in_days"' in response.content.decode()
    assert '<p class="error" role="alert">' in response.content.decode()
    response = client.post(reverse("data_plane_token_create", args=[control_plane.pk]),
                           {"name": "dp", "expires_in_days": data_plane})
    assert response.status_code == 400 and '<p class="error" role="alert">' in response.content.decode()
    assert not PersonalAccessToken.objects.exists() and not DataPlaneToken.objects.exists()


def test_the_chosen_lifetime_is_kept(login, org, org_admin):
    response = login(org_admin).post(reverse("access_token_create"), {"name": "ci", "expires_in_days": "30"})
    assert response.status_code == 201
    token = PersonalAccessToken.objects.get()
    assert timedelta(days=29, hours=23) < token.expires_at - token.created_at <= timedelta(days=30)
    assert "expires in 4\xa0weeks" in response.content.decode() or "expires in 4 weeks" in response.content.decode()


def test_the_list_says_when_a_token_expires_or_that_it_expired(login, org, org_admin):
    tokens.personal_access_token_create(user=org_admin, organization=org, name="fresh", expires_in_days=180)
    old, _text = tokens.personal_access_token_create(user=org_admin, organization=org, name="old")
    PersonalAccessToken.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(days=1))
    page = login(org_admin).get(reverse("access_token_list")).content.decode()
    fresh_row = page[page.index("<td>fresh</td>"):][:600]
    old_row = page[page.index("<td>old</td>"):][:600]
    assert "expires in" in fresh_row and "expired" not in fresh_row
    assert "expired" in old_row and "Revoke" not in old_row


def test_an_expired_personal_access_token_is_401_problem_json(client, org, org_admin):
    token, text = tokens.personal_access_token_create(user=org_admin, organization=org, name="ci")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {text}"}
    assert client.get("/api/us/v0/cmeks", **auth).status_code == 200
    PersonalAccessToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get("/api/us/v0/cmeks", **auth)
    assert response.status_code == 401 and response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 401


def test_an_expired_data_plane_token_is_refused(org_admin, control_plane):
    token, text = tokens.data_plane_token_create(actor=org_admin, control_plane=control_plane, name="dp")
    DataPlaneToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert tokens.data_plane_token_authenticate(text) is None


# --- suspended organizations ------------------------------------------------------------------------------


def test_a_suspended_organizations_tokens_are_401_problem_json(client, org, org_admin, control_plane):
    _pat, pat = tokens.personal_access_token_create(user=org_admin, organization=org, name="ci")
    _dp, dp = tokens.data_plane_token_create(actor=org_admin, control_plane=control_plane, name="dp")
    resolve = {"path": "/api/us/v1/vault/resolve", "data": {"references": ["{vault://pay/x}"]},
               "content_type": "application/json"}
    assert client.get("/api/us/v0/cmeks", HTTP_AUTHORIZATION=f"Bearer {pat}").status_code == 200
    assert client.post(**resolve, HTTP_AUTHORIZATION=f"Bearer {dp}").status_code != 401

    Organization.objects.filter(pk=org.pk).update(state=Organization.State.INACTIVE)
    for response in (client.get("/api/us/v0/cmeks", HTTP_AUTHORIZATION=f"Bearer {pat}"),
                     client.post(**resolve, HTTP_AUTHORIZATION=f"Bearer {dp}"),
                     client.post("/api/us/v1/debugger/sessions/x/traces", {}, content_type="application/json",
                                 HTTP_AUTHORIZATION=f"Bearer {dp}")):
        assert response.status_code == 401 and response["Content-Type"] == "application/problem+json"

    Organization.objects.filter(pk=org.pk).update(state=Organization.State.ACTIVE)
    assert client.get("/api/us/v0/cmeks", HTTP_AUTHORIZATION=f"Bearer {pat}").status_code == 200
