"""The one place that answers "may this user do X on this object".

Every view and API operation asks `can()` / `require()`. Objects of another organization are
invisible (the caller gets 404 from the scoped lookups), objects the user can see but not change
give 403.

Least privilege for plaintext (DESIGN.md §2): seeing a debug session (`DEBUG_SESSION_VIEW`: its metadata,
traces, spans) is not reading what it captured. Decrypted payloads, request logs and blobs need
`DEBUG_PAYLOAD_READ`: Organization Admin, or Control Plane Admin / Debug Session Creator of that control
plane (held on it or on `*`). Viewers, Vault Admins, Control Plane Creators and the read-only Organization
Admin see metadata and an "encrypted" state.

A Control Plane Creator held on `*` lets its holder create control planes; on existing ones it reaches only
those the holder created (`ControlPlane.created_by`), which `control_plane_create` also makes them
Control Plane Admin of. Held on one control plane, it is a grant on that control plane like any other role.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from django.core.exceptions import PermissionDenied

from konnect_admin.models import ControlPlane, Membership, Organization, Role, RoleAssignment, Team


class Action(StrEnum):
    ORG_VIEW = "organization.view"
    MEMBERS_VIEW = "members.view"
    MEMBERS_MANAGE = "members.manage"
    AUDIT_VIEW = "audit.view"
    KEY_VIEW = "encryption_key.view"
    KEY_MANAGE = "encryption_key.manage"
    CONTROL_PLANE_CREATE = "control_plane.create"
    CONTROL_PLANE_VIEW = "control_plane.view"
    CONTROL_PLANE_ADMIN = "control_plane.admin"
    DEBUG_SESSION_VIEW = "debug_session.view"
    DEBUG_PAYLOAD_READ = "debug_session.read_payloads"
    DEBUG_SESSION_CREATE = "debug_session.create"
    VAULT_VIEW = "vault.view"
    VAULT_ADMIN = "vault.admin"
    # Envelope materials (data keys in plaintext): system accounts holding the Envelope Materials role only.
    ENVELOPE_MATERIALS = "envelope_materials.use"


ORG_READERS = {Role.ORG_ADMIN, Role.ORG_ADMIN_READ_ONLY}
ORG_ACTIONS: dict[Action, set[Role]] = {
    Action.ORG_VIEW: set(Role),
    Action.MEMBERS_VIEW: ORG_READERS,
    Action.MEMBERS_MANAGE: {Role.ORG_ADMIN},
    Action.AUDIT_VIEW: ORG_READERS,
    Action.KEY_VIEW: ORG_READERS,
    Action.KEY_MANAGE: {Role.ORG_ADMIN},
    Action.CONTROL_PLANE_CREATE: {Role.ORG_ADMIN, Role.CP_CREATOR, Role.CP_ADMIN},
    Action.ENVELOPE_MATERIALS: {Role.ENVELOPE_MATERIALS},
}
ANY_CP_ROLE = {Role.CP_ADMIN, Role.CP_CREATOR, Role.CP_VIEWER, Role.DEBUG_SESSION_CREATOR, Role.VAULT_ADMIN}
# Held on `*`, these reach only the control planes the holder created.
CREATED_ONLY = frozenset({Role.CP_CREATOR})
# Organization-wide roles that reach no control plane at all.
NO_CONTROL_PLANE = frozenset({Role.ENVELOPE_MATERIALS})
# Roles that allow an action on a control plane, when held on that control plane or on `*`.
# Organization admins may do everything; the read-only admin may read everything.
CONTROL_PLANE_ACTIONS: dict[Action, set[Role]] = {
    Action.CONTROL_PLANE_VIEW: ANY_CP_ROLE | ORG_READERS,
    Action.CONTROL_PLANE_ADMIN: {Role.CP_ADMIN, Role.ORG_ADMIN},
    Action.DEBUG_SESSION_VIEW: ANY_CP_ROLE | ORG_READERS,
    # DESIGN.md §2: plaintext of Debugger payloads, request logs and blobs.
    Action.DEBUG_PAYLOAD_READ: {Role.DEBUG_SESSION_CREATOR, Role.CP_ADMIN, Role.ORG_ADMIN},
    Action.DEBUG_SESSION_CREATE: {Role.DEBUG_SESSION_CREATOR, Role.CP_ADMIN, Role.ORG_ADMIN},
    Action.VAULT_VIEW: {Role.VAULT_ADMIN, Role.CP_ADMIN, Role.CP_VIEWER, Role.CP_CREATOR} | ORG_READERS,
    Action.VAULT_ADMIN: {Role.VAULT_ADMIN, Role.CP_ADMIN, Role.ORG_ADMIN},
}


@dataclass
class Grants:
    """What one user holds in one organization: roles on `*` (None) and per control plane.

    `created` is the control planes the user created, where a `*` role of CREATED_ONLY applies."""

    is_member: bool = False
    by_control_plane: dict[uuid.UUID | None, set[Role]] = field(default_factory=dict)
    created: frozenset[uuid.UUID] = frozenset()

    @property
    def everywhere(self) -> set[Role]:
        return self.by_control_plane.get(None, set())

    @property
    def on_every_control_plane(self) -> set[Role]:
        """The `*` roles that reach every control plane of the organization."""
        return self.everywhere - CREATED_ONLY - NO_CONTROL_PLANE

    def roles_on(self, control_plane_id: uuid.UUID | None) -> set[Role]:
        if control_plane_id is None:
            return self.everywhere
        roles = self.on_every_control_plane | self.by_control_plane.get(control_plane_id, set())
        if control_plane_id in self.created:
            roles |= self.everywhere & CREATED_ONLY
        return roles

    @property
    def all_roles(self) -> set[Role]:
        """Roles held on at least one control plane (or organization-wide)."""
        roles = self.on_every_control_plane.union(*(r for cp, r in self.by_control_plane.items() if cp is not None))
        return roles | (self.everywhere & CREATED_ONLY if self.created else set())


def grants_for(user, organization: Organization | None) -> Grants:
    """Roles of `user` in `organization`, computed once per user object and organization."""
    if organization is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return Grants()
    cache = user.__dict__.setdefault("_konnect_grants", {})
    if organization.pk in cache:
        return cache[organization.pk]
    grants = Grants(is_member=Membership.objects.filter(organization=organization, user=user).exists())
    if grants.is_member:
        team_roles = Team.objects.filter(organization=organization, members=user).exclude(predefined_role="")
        for role in team_roles.values_list("predefined_role", flat=True):
            grants.by_control_plane.setdefault(None, set()).add(Role(role))
        direct = RoleAssignment.objects.filter(organization=organization, user=user)
        for cp_id, role in direct.values_list("control_plane_id", "role"):
            grants.by_control_plane.setdefault(cp_id, set()).add(Role(role))
        if grants.everywhere & CREATED_ONLY:
            grants.created = frozenset(ControlPlane.objects.filter(organization=organization, created_by=user)
                                       .values_list("pk", flat=True))
    cache[organization.pk] = grants
    return grants


def forget_grants(user) -> None:
    user.__dict__.pop("_konnect_grants", None)


def _organization_of(target) -> Organization:
    if isinstance(target, Organization):
        return target
    return target.organization


def _control_plane_of(target) -> ControlPlane | None:
    if isinstance(target, ControlPlane):
        return target
    return getattr(target, "control_plane", None)


def can(user, action: Action, target) -> bool:
    """May `user` do `action` on `target` (an Organization, a ControlPlane, or an object that has one)?"""
    grants = grants_for(user, _organization_of(target))
    if not grants.is_member:
        return False
    if action in ORG_ACTIONS:
        return bool(grants.everywhere & ORG_ACTIONS[action]) or action is Action.ORG_VIEW
    control_plane = _control_plane_of(target)
    allowed = CONTROL_PLANE_ACTIONS[action]
    if control_plane is None:  # "on any control plane of the organization"
        return bool(grants.all_roles & allowed)
    return bool(grants.roles_on(control_plane.pk) & allowed)


def can_on_every_control_plane(user, action: Action, organization: Organization) -> bool:
    """May `user` do `action` on every control plane of `organization`, present and future (a `*` grant)?"""
    grants = grants_for(user, organization)
    return grants.is_member and bool(grants.on_every_control_plane & CONTROL_PLANE_ACTIONS[action])


def require(user, action: Action, target) -> None:
    if not can(user, action, target):
        raise PermissionDenied(f"You need a role that allows {action.value} here.")


def visible_control_plane_ids(user, organization: Organization) -> set[uuid.UUID] | None:
    """None means "every control plane of the organization"."""
    grants = grants_for(user, organization)
    if grants.on_every_control_plane:
        return None
    visible = {cp_id for cp_id, roles in grants.by_control_plane.items() if cp_id and roles & ANY_CP_ROLE}
    if grants.everywhere & CREATED_ONLY:
        visible |= grants.created
    return visible
