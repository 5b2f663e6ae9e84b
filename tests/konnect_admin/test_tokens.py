import pytest
from django.urls import reverse

from konnect_admin import tokens
from konnect_admin.models import AuditEvent, DataPlaneToken, PersonalAccessToken
from konnect_admin.models.tokens import token_digest
from tests import factories

pytestmark = pytest.mark.django_db


def test_token_is_shown_once_and_stored_only_as_a_digest(login, org, org_admin):
    response = login(org_admin).post(reverse("access_token_create"), {"name": "terraform"})
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
        reverse("data_plane_token_create", args=[control_plane.pk]), {"name": "dp-1"}, headers={"HX-Request": "true"}
    )
    text = response.context["section"]["new_token"]
    assert response.status_code == 201 and text.startswith("kdpt_")
    assert tokens.data_plane_token_authenticate(text).control_plane == control_plane
    assert "<html" not in response.content.decode()


def test_data_plane_token_of_another_org_is_404(login, org_admin, other_control_plane):
    response = login(org_admin).post(reverse("data_plane_token_create", args=[other_control_plane.pk]), {"name": "x"})
    assert response.status_code == 404
