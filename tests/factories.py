"""Test data builders, in one place. Each returns saved objects."""

from __future__ import annotations

import itertools

from konnect_admin import services
from konnect_admin.models import ControlPlane, Organization, Role, RoleAssignment, User

PASSWORD = "correct horse battery staple"  # noqa: S105
_seq = itertools.count(1)


def make_organization(name: str | None = None) -> Organization:
    return services.organization_create(name=name or f"Org {next(_seq)}", actor=None)


def make_user(organization: Organization | None = None, *, team: str | None = None, email: str | None = None) -> User:
    user = User.objects.create_user(email=email or f"user{next(_seq)}@example.test", password=PASSWORD)
    if organization is not None:
        services.member_add(organization=organization, user=user, actor=None, team=team)
    return user


def make_control_plane(organization: Organization, *, name: str | None = None, region: str = "us") -> ControlPlane:
    return ControlPlane.objects.create(organization=organization, name=name or f"cp-{next(_seq)}", region=region)


def grant(user: User, organization: Organization, role: Role, control_plane: ControlPlane | None = None) -> None:
    RoleAssignment.objects.create(organization=organization, user=user, role=role, control_plane=control_plane)


ROLE_TEAMS = {
    "org_admin": ("Organization Admin", None),
    "org_admin_read_only": ("Organization Admin (Read Only)", None),
    "cp_admin_team": ("Control Plane Admin", None),
}


def make_role_user(organization: Organization, role_name: str, control_plane: ControlPlane | None = None) -> User:
    """A member holding one named role: a predefined team, a control-plane role, or none ('member')."""
    if role_name in ROLE_TEAMS:
        return make_user(organization, team=ROLE_TEAMS[role_name][0])
    user = make_user(organization)
    if role_name != "member":
        grant(user, organization, Role(role_name), control_plane)
    return user
