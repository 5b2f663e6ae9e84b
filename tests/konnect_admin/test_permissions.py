import pytest

from konnect_admin.models import Role
from konnect_admin.permissions import Action, can, visible_control_plane_ids
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("role_name", "allowed"),
    [
        ("org_admin", True),
        ("org_admin_read_only", False),
        ("cp_admin_team", True),
        ("cp_creator", True),
        ("cp_viewer", False),
        ("debug_session_creator", False),
        ("vault_admin", False),
        ("member", False),
    ],
)
def test_who_may_create_control_planes(org, role_name, allowed):
    user = factories.make_role_user(org, role_name)
    assert can(user, Action.CONTROL_PLANE_CREATE, org) is allowed


def test_role_on_one_control_plane_does_not_reach_another(org, control_plane):
    other = factories.make_control_plane(org, name="billing")
    user = factories.make_role_user(org, "vault_admin", control_plane)
    assert can(user, Action.VAULT_ADMIN, control_plane)
    assert not can(user, Action.VAULT_ADMIN, other)
    assert not can(user, Action.CONTROL_PLANE_VIEW, other)
    assert visible_control_plane_ids(user, org) == {control_plane.pk}


def test_star_role_covers_every_control_plane(org, control_plane):
    user = factories.make_role_user(org, "debug_session_creator")
    assert can(user, Action.DEBUG_SESSION_CREATE, control_plane)
    assert not can(user, Action.VAULT_ADMIN, control_plane)
    assert visible_control_plane_ids(user, org) is None


def test_read_only_admin_reads_but_does_not_change(org, control_plane):
    user = factories.make_role_user(org, "org_admin_read_only")
    assert can(user, Action.KEY_VIEW, org)
    assert can(user, Action.VAULT_VIEW, control_plane)
    assert not can(user, Action.KEY_MANAGE, org)
    assert not can(user, Action.VAULT_ADMIN, control_plane)
    assert not can(user, Action.MEMBERS_MANAGE, org)


def test_org_admin_of_another_org_has_no_rights_here(org, control_plane, other_org_admin):
    for action in Action:
        target = org if action.value.startswith(("organization", "members", "audit", "encryption_key")) else control_plane
        assert not can(other_org_admin, action, target), action


def test_member_without_role_only_sees_the_organization(org, control_plane):
    user = factories.make_role_user(org, "member")
    assert can(user, Action.ORG_VIEW, org)
    assert not can(user, Action.CONTROL_PLANE_VIEW, control_plane)
    assert not can(user, Action.KEY_VIEW, org)


def test_inactive_user_has_no_rights(org, org_admin):
    org_admin.is_active = False
    org_admin.save()
    org_admin.refresh_from_db()
    assert not can(org_admin, Action.ORG_VIEW, org)


def test_grants_follow_a_role_change(org, control_plane):
    from konnect_admin import services

    admin = factories.make_role_user(org, "org_admin")
    user = factories.make_role_user(org, "member")
    assert not can(user, Action.CONTROL_PLANE_VIEW, control_plane)
    services.role_assign(organization=org, actor=admin, user=user, role=Role.CP_VIEWER, control_plane=control_plane)
    assert can(user, Action.CONTROL_PLANE_VIEW, control_plane)
