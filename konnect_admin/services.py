"""Writes of the platform app. Keyword-only, typed, audited."""

from __future__ import annotations

from django.db import transaction

from konnect_admin.models import (
    AuditEvent,
    ControlPlane,
    Membership,
    Organization,
    Role,
    RoleAssignment,
    Team,
    User,
)
from konnect_admin.permissions import Action, forget_grants, require

PREDEFINED_TEAMS = (
    ("Organization Admin", Role.ORG_ADMIN, "Full control of the organization, its keys and members."),
    ("Organization Admin (Read Only)", Role.ORG_ADMIN_READ_ONLY, "Reads everything, changes nothing."),
    ("Control Plane Admin", Role.CP_ADMIN, "Administers every control plane."),
)


def audit_record(
    *, actor: User | None, organization: Organization | None, action: str, target=None, details: dict | None = None
) -> AuditEvent:
    return AuditEvent.objects.create(
        organization=organization,
        actor=actor if actor is not None and actor.pk else None,
        actor_label=actor.email if actor is not None and actor.pk else "system",
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=str(target)[:300] if target is not None else "",
        details=details or {},
    )


@transaction.atomic
def organization_create(*, name: str, actor: User | None, retention_days: int = 15) -> Organization:
    organization = Organization.objects.create(name=name, retention_days=retention_days)
    for team_name, role, description in PREDEFINED_TEAMS:
        Team.objects.create(organization=organization, name=team_name, predefined_role=role, description=description)
    audit_record(actor=actor, organization=organization, action="organization.created", target=organization)
    return organization


@transaction.atomic
def member_add(
    *, organization: Organization, user: User, actor: User | None, team: str | None = None
) -> Membership:
    membership, _ = Membership.objects.get_or_create(organization=organization, user=user)
    if team:
        Team.objects.get(organization=organization, name=team).members.add(user)
    forget_grants(user)
    audit_record(
        actor=actor, organization=organization, action="member.added", target=user, details={"team": team or ""}
    )
    return membership


@transaction.atomic
def control_plane_create(
    *,
    organization: Organization,
    actor: User,
    name: str,
    region: str,
    description: str = "",
    labels: dict | None = None,
    cluster_type: str = ControlPlane._meta.get_field("cluster_type").default,
) -> ControlPlane:
    require(actor, Action.CONTROL_PLANE_CREATE, organization)
    control_plane = ControlPlane(
        organization=organization,
        name=name,
        region=region,
        description=description,
        labels=labels or {},
        cluster_type=cluster_type,
        created_by=actor,
    )
    control_plane.full_clean()
    control_plane.save()
    # As in Konnect, a creator administers what they create.
    RoleAssignment.objects.get_or_create(
        organization=organization, user=actor, role=Role.CP_ADMIN, control_plane=control_plane
    )
    forget_grants(actor)
    audit_record(
        actor=actor,
        organization=organization,
        action="control_plane.created",
        target=control_plane,
        details={"region": region},
    )
    return control_plane


@transaction.atomic
def role_assign(
    *, organization: Organization, actor: User, user: User, role: str, control_plane: ControlPlane | None
) -> RoleAssignment:
    require(actor, Action.MEMBERS_MANAGE, organization)
    if role in (Role.ORG_ADMIN, Role.ORG_ADMIN_READ_ONLY):
        raise ValueError("Organization roles are given by the predefined teams.")
    assignment, created = RoleAssignment.objects.get_or_create(
        organization=organization, user=user, role=role, control_plane=control_plane
    )
    if created:
        audit_record(
            actor=actor,
            organization=organization,
            action="role.assigned",
            target=user,
            details={"role": role, "control_plane": str(control_plane.pk) if control_plane else "*"},
        )
    forget_grants(user)
    return assignment


@transaction.atomic
def role_revoke(*, organization: Organization, actor: User, assignment: RoleAssignment) -> None:
    require(actor, Action.MEMBERS_MANAGE, organization)
    details = {"role": assignment.role, "control_plane": str(assignment.control_plane_id or "*")}
    user = assignment.user
    assignment.delete()
    forget_grants(user)
    audit_record(actor=actor, organization=organization, action="role.revoked", target=user, details=details)


@transaction.atomic
def team_membership_set(*, organization: Organization, actor: User, user: User, team: Team, member: bool) -> None:
    require(actor, Action.MEMBERS_MANAGE, organization)
    if member:
        team.members.add(user)
    else:
        if team.predefined_role == Role.ORG_ADMIN and actor == user:
            raise ValueError("You cannot remove yourself from the Organization Admin team.")
        team.members.remove(user)
    forget_grants(user)
    audit_record(
        actor=actor,
        organization=organization,
        action="team.member_added" if member else "team.member_removed",
        target=user,
        details={"team": team.name},
    )
