"""System accounts: services, `spat_…` tokens (hash only, expiry, revoke), the API accepting them, the pages."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from konnect_admin import selectors
from konnect_admin import system_accounts as accounts
from konnect_admin.models import (
    AuditEvent,
    Membership,
    Organization,
    Role,
    RoleAssignment,
    SystemAccount,
    SystemAccountAccessToken,
    Team,
    User,
)
from konnect_admin.models.tokens import token_digest
from konnect_admin.permissions import Action, can, visible_control_plane_ids
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(org, org_admin):
    return accounts.system_account_create(organization=org, actor=org_admin, name="terraform-ci",
                                          description="Terraform in CI")


def spat(account, actor, **kwargs):
    return accounts.system_account_token_create(account=account, actor=actor, name="ci", **kwargs)


def bearer(text):
    return {"Authorization": f"Bearer {text}"}


# --- services ----------------------------------------------------------------------------------------------


def test_a_system_account_is_a_member_without_a_password_and_not_listed_as_a_person(org, org_admin, account):
    user = account.user
    assert not user.has_usable_password() and user.email.endswith("@system-accounts.invalid")
    assert Membership.objects.filter(organization=org, user=user).exists()
    assert user not in [m.user for m in selectors.member_list(user=org_admin, organization=org)]
    event = AuditEvent.objects.get(action="system_account.created")
    assert event.actor == org_admin and event.target_id == str(account.pk) and event.organization == org
    with pytest.raises(ValidationError):
        accounts.system_account_create(organization=org, actor=org_admin, name="terraform-ci")


@pytest.mark.parametrize("role", ["org_admin_read_only", "cp_admin_team", "member"])
def test_only_organization_admins_manage_system_accounts(org, account, role):
    someone = factories.make_role_user(org, role)
    with pytest.raises(PermissionDenied):
        accounts.system_account_create(organization=org, actor=someone, name="x")
    with pytest.raises(PermissionDenied):
        spat(account, someone)
    with pytest.raises(PermissionDenied):
        accounts.system_account_role_assign(account=account, actor=someone, role=Role.ENVELOPE_MATERIALS)


def test_teams_and_roles_give_a_system_account_permissions_through_can(org, org_admin, account, control_plane):
    user = account.user
    assert not can(user, Action.KEY_VIEW, org) and not can(user, Action.CONTROL_PLANE_VIEW, control_plane)
    team = Team.objects.get(organization=org, predefined_role=Role.ORG_ADMIN_READ_ONLY)
    accounts.system_account_team_set(account=account, actor=org_admin, team=team, member=True)
    assert can(user, Action.KEY_VIEW, org) and not can(user, Action.KEY_MANAGE, org)
    accounts.system_account_team_set(account=account, actor=org_admin, team=team, member=False)
    assert not can(user, Action.KEY_VIEW, org)
    assignment = accounts.system_account_role_assign(account=account, actor=org_admin, role=Role.VAULT_ADMIN,
                                                     control_plane=control_plane)
    assert can(user, Action.VAULT_ADMIN, control_plane)
    accounts.system_account_role_revoke(account=account, actor=org_admin, assignment=assignment)
    assert not can(user, Action.VAULT_ADMIN, control_plane)
    actions = list(AuditEvent.objects.filter(action__startswith="system_account.").order_by("id")
                   .values_list("action", flat=True))
    assert actions == ["system_account.created", "system_account.team_added", "system_account.team_removed",
                       "system_account.role_assigned", "system_account.role_revoked"]


def test_envelope_materials_is_organization_wide_and_reaches_no_control_plane(org, org_admin, account, control_plane):
    with pytest.raises(ValueError, match="organization-wide"):
        accounts.system_account_role_assign(account=account, actor=org_admin, role=Role.ENVELOPE_MATERIALS,
                                            control_plane=control_plane)
    accounts.system_account_role_assign(account=account, actor=org_admin, role=Role.ENVELOPE_MATERIALS)
    assert can(account.user, Action.ENVELOPE_MATERIALS, org)
    assert not can(account.user, Action.CONTROL_PLANE_VIEW, control_plane)
    assert visible_control_plane_ids(account.user, org) == set()
    assert not can(org_admin, Action.ENVELOPE_MATERIALS, org), "not even an Organization Admin holds it implicitly"


# --- tokens ------------------------------------------------------------------------------------------------


def test_token_text_is_returned_once_and_only_its_digest_is_stored(org, org_admin, account):
    token, text = spat(account, org_admin, expires_in_days=30)
    assert text.startswith("spat_") and len(text) > 40
    row = SystemAccountAccessToken.objects.filter(pk=token.pk).values().get()
    assert row["digest"] == token_digest(text) and row["hint"] == text[:12]
    assert not any(text in str(value) for value in row.values())
    assert token.expires_at - timezone.now() > timedelta(days=29)
    assert accounts.system_account_token_authenticate(text) == token
    assert AuditEvent.objects.filter(action="system_account.token_created", target_id=str(token.pk)).exists()


def test_token_expiry_is_required_and_bounded(settings, org_admin, account):
    with pytest.raises(ValidationError):
        spat(account, org_admin, expires_in_days=settings.ACCESS_TOKEN_MAX_DAYS + 1)
    with pytest.raises(IntegrityError), transaction.atomic():
        SystemAccountAccessToken.objects.create(system_account=account, name="x", digest="d" * 64, hint="spat_x",
                                                expires_at=None)


def test_expired_revoked_and_foreign_tokens_do_not_authenticate(org, org_admin, account):
    token, text = spat(account, org_admin)
    assert accounts.system_account_token_authenticate(text + "x") is None
    assert accounts.system_account_token_authenticate("kpat_" + text[5:]) is None
    SystemAccountAccessToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert accounts.system_account_token_authenticate(text) is None
    token2, text2 = spat(account, org_admin)
    assert accounts.system_account_token_revoke(token=token2, actor=org_admin) is True
    assert accounts.system_account_token_revoke(token=token2, actor=org_admin) is False
    assert accounts.system_account_token_authenticate(text2) is None
    assert AuditEvent.objects.filter(action="system_account.token_revoked").count() == 1


def test_tokens_stop_with_a_suspended_organization_or_a_deleted_account(org, org_admin, account):
    _token, text = spat(account, org_admin)
    Organization.objects.filter(pk=org.pk).update(state=Organization.State.INACTIVE)
    assert accounts.system_account_token_authenticate(text) is None
    Organization.objects.filter(pk=org.pk).update(state=Organization.State.ACTIVE)
    assert accounts.system_account_token_authenticate(text) is not None
    user_pk, account_pk = account.user.pk, account.pk
    accounts.system_account_delete(account=account, actor=org_admin)
    assert accounts.system_account_token_authenticate(text) is None
    assert not User.objects.filter(pk=user_pk).exists() and not SystemAccountAccessToken.objects.exists()
    assert AuditEvent.objects.filter(action="system_account.deleted", target_id=str(account_pk)).exists()


# --- the API accepts spat tokens; pages and log-in do not ------------------------------------------------


def test_spat_token_on_the_cmek_api_acts_with_the_accounts_roles(client, org, org_admin, account):
    _token, text = spat(account, org_admin)
    for base in ("/api/us/v0",):
        assert client.get(f"{base}/cmeks", headers=bearer(text)).status_code == 403  # no role yet
    team = Team.objects.get(organization=org, predefined_role=Role.ORG_ADMIN_READ_ONLY)
    accounts.system_account_team_set(account=account, actor=org_admin, team=team, member=True)
    response = client.get("/api/us/v0/cmeks", headers=bearer(text))
    assert response.status_code == 200 and response.json()["data"] == []
    assert client.get("/api/us/v0/cmeks", headers=bearer(text + "x")).status_code == 401
    assert SystemAccountAccessToken.objects.get().last_used_at is not None


def test_spat_token_on_the_config_store_api(client, org, org_admin, account, control_plane, other_control_plane):
    _token, text = spat(account, org_admin)
    url = f"/api/us/v2/control-planes/{control_plane.pk}/config-stores"
    assert client.post(url, data={"name": "ci"}, content_type="application/json",
                       headers=bearer(text)).status_code == 404  # invisible without a role
    accounts.system_account_role_assign(account=account, actor=org_admin, role=Role.VAULT_ADMIN,
                                        control_plane=control_plane)
    created = client.post(url, data={"name": "ci"}, content_type="application/json", headers=bearer(text))
    assert created.status_code == 201, created.content
    assert client.get(url, headers=bearer(text)).json()["data"][0]["name"] == "ci"
    other = f"/api/us/v2/control-planes/{other_control_plane.pk}/config-stores"
    assert client.get(other, headers=bearer(text)).status_code == 404
    event = AuditEvent.objects.get(action="vault.config_store.created")
    assert event.actor == account.user


def test_spat_token_is_refused_on_pages(client, org, org_admin, account):
    _token, text = spat(account, org_admin)
    accounts.system_account_team_set(account=account, actor=org_admin,
                                     team=Team.objects.get(organization=org, predefined_role=Role.ORG_ADMIN),
                                     member=True)
    for name in ("dashboard", "control_plane_list", "system_account_list"):
        response = client.get(reverse(name), headers=bearer(text))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_system_account_cannot_sign_in_nor_keep_a_session(client, org, org_admin, account):
    user = account.user
    user.set_password(factories.PASSWORD)  # even if it somehow had a password
    user.save()
    response = client.post(reverse("login"), {"username": user.email, "password": factories.PASSWORD})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    client.force_login(user, backend="konnect_admin.authentication.EmailPasswordBackend")
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- pages -------------------------------------------------------------------------------------------------


def test_org_admin_manages_system_accounts_from_the_pages(login, org, org_admin, control_plane):
    client = login(org_admin)
    menu = client.get(reverse("dashboard")).content.decode()
    assert reverse("system_account_list") in menu
    response = client.post(reverse("system_account_list"), {"name": "billing", "description": "encrypts"})
    account = SystemAccount.objects.get(name="billing")
    assert response.status_code == 302 and response["Location"] == reverse("system_account_detail", args=[account.pk])
    page = client.get(reverse("system_account_detail", args=[account.pk])).content.decode()
    assert "billing" in page and "Envelope Materials" in page

    team = Team.objects.get(organization=org, predefined_role=Role.CP_ADMIN)
    client.post(reverse("system_account_teams", args=[account.pk]), {"teams": [team.pk]})
    assert list(Team.objects.filter(members=account.user)) == [team]
    client.post(reverse("system_account_role_assign", args=[account.pk]), {"role": "envelope_materials"})
    assignment = RoleAssignment.objects.get(user=account.user, role=Role.ENVELOPE_MATERIALS)
    bad = client.post(reverse("system_account_role_assign", args=[account.pk]),
                      {"role": "envelope_materials", "control_plane": control_plane.pk})
    assert bad.status_code == 400 and "organization-wide" in bad.content.decode()

    created = client.post(reverse("system_account_token_create", args=[account.pk]),
                          {"token-name": "prod", "token-expires_in_days": "90"}, headers={"HX-Request": "true"})
    text = created.context["new_token"]
    assert created.status_code == 201 and text.startswith("spat_") and text in created.content.decode()
    assert created.content.decode().lstrip().startswith('<section class="card" id="tokens">')
    again = client.get(reverse("system_account_detail", args=[account.pk])).content.decode()
    assert text not in again and text[:12] in again
    token = SystemAccountAccessToken.objects.get()
    client.post(reverse("system_account_token_revoke", args=[account.pk, token.pk]))
    assert accounts.system_account_token_authenticate(text) is None
    client.post(reverse("system_account_role_revoke", args=[account.pk, assignment.pk]))
    assert not RoleAssignment.objects.filter(pk=assignment.pk).exists()

    assert "Delete billing" in client.get(reverse("system_account_delete", args=[account.pk])).content.decode()
    assert client.post(reverse("system_account_delete", args=[account.pk])).status_code == 302
    assert not SystemAccount.objects.exists()
    actions = AuditEvent.objects.filter(action__startswith="system_account.").order_by("id")
    assert list(actions.values_list("action", flat=True)) == [
        "system_account.created", "system_account.team_added", "system_account.role_assigned",
        "system_account.token_created", "system_account.token_revoked", "system_account.role_revoked",
        "system_account.deleted"]


def test_pages_are_for_org_admins_of_the_same_organization(login, org, other_org, other_org_admin, account):
    reader = factories.make_role_user(org, "org_admin_read_only")
    assert login(reader).get(reverse("system_account_list")).status_code == 403
    assert reverse("system_account_list") not in login(reader).get(reverse("dashboard")).content.decode()
    other = login(other_org_admin)
    assert other.get(reverse("system_account_detail", args=[account.pk])).status_code == 404
    assert other.post(reverse("system_account_token_create", args=[account.pk]),
                      {"token-name": "x", "token-expires_in_days": "90"}).status_code == 404
    assert not SystemAccountAccessToken.objects.exists()


def test_create_form_errors_without_javascript(login, org_admin, account):
    response = login(org_admin).post(reverse("system_account_list"), {"name": "terraform-ci"})
    assert response.status_code == 400 and "already exists" in response.content.decode()


def test_spat_token_on_the_blob_api(local_kms, client, org, org_admin, account):
    _token, text = spat(account, org_admin)
    url = "/api/us/v0/blobs/ci-artifact"
    refused = client.put(url, b"bytes", content_type="application/octet-stream", headers=bearer(text))
    assert refused.status_code == 403
    accounts.system_account_team_set(account=account, actor=org_admin,
                                     team=Team.objects.get(organization=org, predefined_role=Role.ORG_ADMIN),
                                     member=True)
    stored = client.put(url, b"bytes", content_type="application/octet-stream", headers=bearer(text))
    assert stored.status_code == 202, stored.content
    assert client.get(url, headers=bearer(text)).content == b"bytes"
