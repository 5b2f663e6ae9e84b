"""An organization always keeps at least one active Organization Admin: role revoke, team removal, membership
removal and the operator's deactivation are refused with a clear message when they would take the last one."""

import json

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from ninja import NinjaAPI
from ninja.testing import TestClient

from konnect_admin import services
from konnect_admin.api import install_problem_handlers
from konnect_admin.models import AuditEvent, Membership, Role, RoleAssignment, Team, User
from konnect_admin.permissions import Action, can, forget_grants
from konnect_admin.problems import PROBLEM_CONTENT_TYPE
from tests import factories

pytestmark = pytest.mark.django_db

REFUSAL = "must keep at least one active Organization Admin"


def admin_team(org) -> Team:
    return Team.objects.get(organization=org, predefined_role=Role.ORG_ADMIN)


def direct_admin(org) -> tuple[User, RoleAssignment]:
    """An Organization Admin through a direct `*` assignment (not the team): the role-revoke path."""
    user = factories.make_user(org)
    factories.grant(user, org, Role.ORG_ADMIN)
    return user, RoleAssignment.objects.get(organization=org, user=user, role=Role.ORG_ADMIN)


def stale_admin(org, actor: User) -> None:
    """`actor` passed its permission check, then lost Organization Admin in another request (two admins removing
    each other at once): the service must still not leave the organization without one."""
    assert can(actor, Action.MEMBERS_MANAGE, org)  # checked, and cached on the user object
    admin_team(org).members.remove(actor)
    RoleAssignment.objects.filter(organization=org, user=actor, role=Role.ORG_ADMIN).delete()


# --- role revoke ------------------------------------------------------------------------------------------------


def test_the_last_admin_cannot_revoke_their_own_role_on_the_page(login, org):
    user, assignment = direct_admin(org)
    client = login(user)
    response = client.post(reverse("role_revoke", args=[assignment.pk]))
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert page.status_code == 200 and REFUSAL in page.content.decode()  # not locked out: Members still opens
    assert RoleAssignment.objects.filter(pk=assignment.pk).exists()
    assert not AuditEvent.objects.filter(organization=org, action="role.revoked").exists()

    fragment = client.post(reverse("role_revoke", args=[assignment.pk]), headers={"HX-Request": "true"})
    body = fragment.content.decode()
    assert fragment.status_code == 422 and "<html" not in body and REFUSAL in body and 'role="alert"' in body


def test_an_admin_role_can_be_revoked_while_another_admin_remains(login, org, org_admin):
    user, assignment = direct_admin(org)
    fragment = login(org_admin).post(reverse("role_revoke", args=[assignment.pk]), headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "Organization Admin revoked from" in fragment.content.decode()
    assert not RoleAssignment.objects.filter(pk=assignment.pk).exists()


# --- team removal -----------------------------------------------------------------------------------------------


def test_the_last_admin_cannot_leave_the_admin_team(login, org, org_admin):
    client = login(org_admin)
    response = client.post(reverse("team_membership"), {"user": org_admin.pk, "team": admin_team(org).pk})
    assert REFUSAL in client.get(response["Location"]).content.decode()
    assert admin_team(org).members.filter(pk=org_admin.pk).exists()


def test_an_admin_may_leave_the_admin_team_when_another_remains(login, org, org_admin):
    second = factories.make_role_user(org, "org_admin")
    client = login(org_admin)
    response = client.post(reverse("team_membership"), {"user": org_admin.pk, "team": admin_team(org).pk})
    assert response["Location"] == reverse("dashboard")  # Members is no longer theirs to see
    assert "removed from Organization Admin" in client.get(response["Location"]).content.decode()
    assert list(admin_team(org).members.all()) == [second]


def test_removing_the_other_admin_from_the_team_is_refused_when_the_actor_lost_theirs_meanwhile(org, org_admin):
    second = factories.make_role_user(org, "org_admin")
    stale_admin(org, org_admin)
    with pytest.raises(services.LastOrganizationAdmin, match=REFUSAL):
        services.team_membership_set(organization=org, actor=org_admin, user=second, team=admin_team(org),
                                     member=False)
    assert admin_team(org).members.filter(pk=second.pk).exists()


# --- membership removal -----------------------------------------------------------------------------------------


def test_removing_the_last_admins_membership_is_refused(org, org_admin):
    second = factories.make_role_user(org, "org_admin")
    stale_admin(org, org_admin)
    with pytest.raises(services.LastOrganizationAdmin, match=REFUSAL):
        services.member_remove(organization=org, actor=org_admin, user=second)
    assert Membership.objects.filter(organization=org, user=second).exists()
    assert admin_team(org).members.filter(pk=second.pk).exists()  # nothing of the removal stayed


def test_the_members_page_shows_the_refusal_of_a_membership_removal(login, org, org_admin):
    second = factories.make_role_user(org, "org_admin")
    client = login(org_admin)
    stale_admin(org, org_admin)
    membership = Membership.objects.get(organization=org, user=second)
    # The page re-checks the actor's rights on a fresh request: a lost admin is refused before the rule.
    assert client.post(reverse("member_remove", args=[membership.pk])).status_code == 403
    forget_grants(org_admin)
    admin_team(org).members.add(org_admin)
    response = client.post(reverse("member_remove", args=[membership.pk]))
    assert f"{second.email} removed" in client.get(response["Location"]).content.decode()


def test_removing_a_non_admin_from_an_org_without_admins_is_not_refused(org):
    """The rule keeps an admin; it does not block an organization that has none yet (before the invitation is
    accepted) from other changes."""
    operator = User.objects.create_superuser(email="ops@platform.test", password="x-operator-password-1")
    member = factories.make_user(org)
    assert services.user_deactivate(user=member, actor=operator) is True


# --- deactivation by the operator -------------------------------------------------------------------------------


def test_the_operator_cannot_deactivate_the_last_admin(client, org, org_admin, other_org):
    services.member_add(organization=other_org, user=org_admin, actor=None, team="Organization Admin")
    factories.make_role_user(other_org, "org_admin")  # other_org has a second admin: Acme does not
    operator = User.objects.create_superuser(email="ops@platform.test", password="x-operator-password-1")
    client.force_login(operator)
    response = client.post(reverse("admin:konnect_admin_user_changelist"),
                           {"action": "deactivate", "index": 0, "_selected_action": [str(org_admin.pk)]}, follow=True)
    body = response.content.decode()
    assert response.status_code == 200 and f"{org.name} {REFUSAL}" in body and "0 users deactivated" in body
    org_admin.refresh_from_db()
    assert org_admin.is_active
    assert not AuditEvent.objects.filter(action="user.deactivated").exists()

    second = factories.make_role_user(org, "org_admin")
    assert services.user_deactivate(user=org_admin, actor=operator) is True
    with pytest.raises(services.LastOrganizationAdmin):
        services.user_deactivate(user=second, actor=operator)
    second.refresh_from_db()
    assert second.is_active


def test_an_inactive_admin_does_not_count(org, org_admin):
    """Deactivated admins cannot manage anything: with only them left, the active one is the last."""
    operator = User.objects.create_superuser(email="ops@platform.test", password="x-operator-password-1")
    second = factories.make_role_user(org, "org_admin")
    services.user_deactivate(user=second, actor=operator)
    assert services.organization_admin_ids(organization=org) == {org_admin.pk}
    with pytest.raises(services.LastOrganizationAdmin):
        services.user_deactivate(user=org_admin, actor=operator)


# --- API --------------------------------------------------------------------------------------------------------


def test_the_api_answers_409_problem_json(org):
    """The JSON API's problem handlers (every NinjaAPI of the project is built with them) turn the refusal into
    409 problem+json; the operation here revokes through the real service."""
    user, assignment = direct_admin(org)
    api = install_problem_handlers(NinjaAPI(urls_namespace="last-admin-test"))

    @api.delete("/assigned-roles/{pk}")
    def revoke(request, pk: int):
        services.role_revoke(organization=org, actor=user, assignment=RoleAssignment.objects.get(pk=pk))
        return 204, None

    response = TestClient(api).delete(f"/assigned-roles/{assignment.pk}")
    assert response.status_code == 409 and response["Content-Type"] == PROBLEM_CONTENT_TYPE
    problem = json.loads(response.content)
    assert problem["status"] == 409 and REFUSAL in problem["detail"] and problem["code"] == "last_organization_admin"
    assert RoleAssignment.objects.filter(pk=assignment.pk).exists()


def test_a_non_admin_is_refused_before_the_rule(org, org_admin):
    outsider = factories.make_user(org)
    with pytest.raises(PermissionDenied):
        services.team_membership_set(organization=org, actor=outsider, user=org_admin, team=admin_team(org),
                                     member=False)


def test_an_admin_who_revoked_their_own_role_goes_to_the_dashboard(login, org, org_admin):
    user, assignment = direct_admin(org)
    response = login(user).post(reverse("role_revoke", args=[assignment.pk]), headers={"HX-Request": "true"})
    assert response.status_code == 200 and response["HX-Redirect"] == reverse("dashboard")
