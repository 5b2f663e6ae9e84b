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


def test_star_role_covers_every_control_plane(org, control_plane):  # every role but Control Plane Creator
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


# --- least privilege for plaintext (issue 12, point 4; DESIGN.md §2) --------------------------------------

PLAINTEXT = {
    # role held on the control plane (None: on `*` or a predefined team) → may read its Debugger plaintext
    ("org_admin", None): True,
    ("cp_admin_team", None): True,
    ("cp_admin", "this"): True,
    ("debug_session_creator", "this"): True,
    ("debug_session_creator", None): True,
    ("cp_admin", "other"): False,
    ("debug_session_creator", "other"): False,
    ("cp_viewer", "this"): False,
    ("cp_viewer", None): False,
    ("vault_admin", "this"): False,
    ("vault_admin", None): False,
    ("cp_creator", None): False,
    ("cp_creator", "this"): False,
    ("org_admin_read_only", None): False,
    ("member", None): False,
}


@pytest.mark.parametrize(("role_name", "where"), sorted(PLAINTEXT, key=str))
def test_only_org_admins_and_cp_admins_or_debug_session_creators_of_that_cp_read_plaintext(
        org, control_plane, role_name, where):
    other = factories.make_control_plane(org, name="billing")
    user = factories.make_role_user(org, role_name, {"this": control_plane, "other": other}.get(where))
    assert can(user, Action.DEBUG_PAYLOAD_READ, control_plane) is PLAINTEXT[role_name, where]


def test_a_viewer_of_another_org_added_as_member_reads_no_plaintext(org, other_org, control_plane):
    """The attack: a Viewer of Globex, invited into Acme with a viewer role, read Acme's request bodies."""
    from konnect_admin import services

    outsider = factories.make_role_user(other_org, "cp_viewer")
    services.member_add(organization=org, user=outsider, actor=None)
    factories.grant(outsider, org, Role.CP_VIEWER, control_plane)
    assert can(outsider, Action.DEBUG_SESSION_VIEW, control_plane)
    assert not can(outsider, Action.DEBUG_PAYLOAD_READ, control_plane)


def test_a_star_control_plane_creator_sees_only_the_control_planes_it_created(org, control_plane):
    """The attack: a Control Plane Creator on `*` saw (and read the vault of) every control plane."""
    from konnect_admin import services

    creator = factories.make_role_user(org, "cp_creator")
    assert visible_control_plane_ids(creator, org) == set()
    assert not can(creator, Action.CONTROL_PLANE_VIEW, control_plane)
    assert not can(creator, Action.VAULT_VIEW, control_plane)
    assert not can(creator, Action.DEBUG_SESSION_VIEW, control_plane)
    own = services.control_plane_create(organization=org, actor=creator, name="creators-own", region="us")
    assert visible_control_plane_ids(creator, org) == {own.pk}
    assert can(creator, Action.CONTROL_PLANE_ADMIN, own)  # control_plane_create made it CP Admin there
    assert can(creator, Action.DEBUG_PAYLOAD_READ, own)
    assert not can(creator, Action.CONTROL_PLANE_VIEW, control_plane)
    assert can(creator, Action.CONTROL_PLANE_CREATE, org)


def test_a_creators_own_control_plane_stays_visible_without_its_admin_grant(org):
    """ControlPlane.created_by keeps the creator a viewer of what it created; admin rights go with the grant."""
    from konnect_admin import services
    from konnect_admin.models import RoleAssignment
    from konnect_admin.permissions import forget_grants

    creator = factories.make_role_user(org, "cp_creator")
    own = services.control_plane_create(organization=org, actor=creator, name="creators-own", region="us")
    RoleAssignment.objects.filter(user=creator, control_plane=own).delete()
    forget_grants(creator)
    assert visible_control_plane_ids(creator, org) == {own.pk}
    assert can(creator, Action.CONTROL_PLANE_VIEW, own)
    assert not can(creator, Action.CONTROL_PLANE_ADMIN, own)
    assert not can(creator, Action.DEBUG_PAYLOAD_READ, own)
