"""Writes of the platform app. Keyword-only, typed, audited."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import PermissionDenied
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from konnect_admin.models import (
    AuditEvent,
    ControlPlane,
    Membership,
    Organization,
    PersonalAccessToken,
    Role,
    RoleAssignment,
    Team,
    TeamMembership,
    User,
)
from konnect_admin.permissions import Action, forget_grants, require
from konnect_admin.selectors import data_plane_tokens_issued_by

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


class LastOrganizationAdmin(ValueError):
    """The change would leave an organization without an active Organization Admin: nobody could manage its
    members or keys any more. Pages show the message, the API answers 409, the operator console reports it."""

    code = "last_organization_admin"

    def __init__(self, organization: Organization):
        self.organization = organization
        super().__init__(f"{organization.name} must keep at least one active Organization Admin: make someone else "
                         "Organization Admin first.")


def organization_admin_ids(*, organization: Organization) -> set[int]:
    """Active members holding Organization Admin, through the predefined team or a direct `*` assignment."""
    in_team = TeamMembership.objects.filter(team__organization=organization, team__predefined_role=Role.ORG_ADMIN)
    direct = RoleAssignment.objects.filter(organization=organization, role=Role.ORG_ADMIN, control_plane__isnull=True)
    holders = Q(pk__in=in_team.values("user_id")) | Q(pk__in=direct.values("user_id"))
    members = User.objects.filter(is_active=True, memberships__organization=organization)
    return set(members.filter(holders).values_list("pk", flat=True))


@contextmanager
def keeping_an_organization_admin(organizations: Iterable[Organization]) -> Iterator[None]:
    """Run a change that may take Organization Admin away; raise LastOrganizationAdmin (the caller's transaction
    rolls the change back) if an organization that had an active admin has none after it.

    The organization rows are locked first, so two admins removing each other at once are serialized: the second
    sees the first's change and is refused."""
    ids = sorted(organization.pk for organization in organizations)
    locked = list(Organization.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    had_admins = [organization for organization in locked if organization_admin_ids(organization=organization)]
    yield
    for organization in had_admins:
        if not organization_admin_ids(organization=organization):
            raise LastOrganizationAdmin(organization)


@transaction.atomic
def organization_create(
    *, name: str, actor: User | None, retention_days: int = 15, via: str = "", region: str = ""
) -> Organization:
    """`via` names the console an operator used (e.g. "platform-admin"); it lands in the audit event, as does the
    organization's home Konnect `region` when given (the organization row has no region: control planes and keys
    choose theirs)."""
    organization = Organization.objects.create(name=name, retention_days=retention_days)
    for team_name, role, description in PREDEFINED_TEAMS:
        Team.objects.create(organization=organization, name=team_name, predefined_role=role, description=description)
    details = ({"via": via} if via else {}) | ({"region": region} if region else {})
    audit_record(actor=actor, organization=organization, action="organization.created", target=organization,
                 details=details)
    return organization


@transaction.atomic
def member_add(
    *, organization: Organization, user: User, actor: User | None, team: str | None = None
) -> Membership:
    membership, created = Membership.objects.get_or_create(organization=organization, user=user)
    if created:
        # A new membership starts empty, even if an earlier one was deleted outside member_remove.
        _member_access_revoke(organization=organization, user=user)
    if team:
        Team.objects.get(organization=organization, name=team).members.add(user)
    forget_grants(user)
    audit_record(
        actor=actor, organization=organization, action="member.added", target=user, details={"team": team or ""}
    )
    return membership


def _member_access_revoke(*, organization: Organization, user: User) -> dict:
    """Take away what `user` holds in `organization`: role assignments, team memberships, personal access tokens."""
    assignments = RoleAssignment.objects.filter(organization=organization, user=user)
    roles = [f"{role}@{cp_id or '*'}" for role, cp_id in assignments.values_list("role", "control_plane_id")]
    assignments.delete()
    team_memberships = TeamMembership.objects.filter(team__organization=organization, user=user)
    teams = list(team_memberships.values_list("team__name", flat=True))
    team_memberships.delete()
    revoked = PersonalAccessToken.objects.filter(
        organization=organization, user=user, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
    return {"roles": roles, "teams": teams, "access_tokens_revoked": revoked}


@transaction.atomic
def member_remove(
    *, organization: Organization, actor: User, user: User, revoke_data_plane_tokens: bool = True
) -> None:
    """Remove `user` from `organization` with everything it gave them: role assignments, team memberships and their
    personal access tokens for this organization (revoked, so a re-added member gets nothing back).

    The live data-plane tokens they created on this organization's control planes are revoked too, unless
    `revoke_data_plane_tokens` is False: a departing Control Plane Admin could otherwise keep resolving vault
    secrets with one until it expires. Gateways may use them, so the Members page asks, showing how many."""
    require(actor, Action.MEMBERS_MANAGE, organization)
    if user.pk == actor.pk:
        raise ValueError("You cannot remove yourself from the organization.")
    with keeping_an_organization_admin([organization]):
        membership = Membership.objects.select_for_update().get(organization=organization, user=user)
        details = _member_access_revoke(organization=organization, user=user)
        membership.delete()
    data_plane_tokens = data_plane_tokens_issued_by(organization=organization, user=user)
    if revoke_data_plane_tokens:
        details |= {"data_plane_tokens_revoked": data_plane_tokens.update(revoked_at=timezone.now()),
                    "data_plane_tokens_kept": 0}
    else:
        details |= {"data_plane_tokens_revoked": 0, "data_plane_tokens_kept": data_plane_tokens.count()}
    forget_grants(user)
    audit_record(actor=actor, organization=organization, action="member.removed", target=user, details=details)


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
    with keeping_an_organization_admin([organization]):
        assignment.delete()
    forget_grants(user)
    audit_record(actor=actor, organization=organization, action="role.revoked", target=user, details=details)


@transaction.atomic
def team_membership_set(*, organization: Organization, actor: User, user: User, team: Team, member: bool) -> None:
    require(actor, Action.MEMBERS_MANAGE, organization)
    if member:
        team.members.add(user)
    else:
        # An admin may leave the Organization Admin team, as long as another active admin remains.
        with keeping_an_organization_admin([organization]):
            team.members.remove(user)
    forget_grants(user)
    audit_record(
        actor=actor,
        organization=organization,
        action="team.member_added" if member else "team.member_removed",
        target=user,
        details={"team": team.name},
    )


# --- platform operator ------------------------------------------------------------------------------------
# The operator is outside the tenant's trust boundary (DESIGN §2): these are the only writes it makes, each
# recorded in the tenant's own audit log with the operator as actor.

OPERATOR_CONSOLE = "platform-admin"
# An operator on a shell (management commands): no user account acts, the event says "system" via "manage.py".
SHELL = "manage.py"


def require_operator(actor: User | None, *, via: str = OPERATOR_CONSOLE) -> None:
    if actor is None and via == SHELL:
        return
    if actor is None or not (actor.is_active and actor.is_superuser):
        raise PermissionDenied("Only a platform operator can do this.")


def _organization_state_set(
    *, organization: Organization, actor: User | None, state: str, action: str, reason: str, via: str
) -> bool:
    require_operator(actor, via=via)
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    if organization.state == Organization.State.DELETED:
        raise ValueError(f"{organization.name} was deleted: it cannot be suspended or reactivated.")
    if organization.state == state:
        return False
    organization.state = state
    organization.save(update_fields=["state"])
    audit_record(actor=actor, organization=organization, action=action, target=organization,
                 details={"via": via, "reason": reason})
    return True


@transaction.atomic
def organization_suspend(
    *, organization: Organization, actor: User | None, reason: str = "", via: str = OPERATOR_CONSOLE
) -> bool:
    """Suspend an organization. False when it already was."""
    return _organization_state_set(organization=organization, actor=actor, state=Organization.State.INACTIVE,
                                   action="organization.suspended", reason=reason, via=via)


@transaction.atomic
def organization_reactivate(
    *, organization: Organization, actor: User | None, reason: str = "", via: str = OPERATOR_CONSOLE
) -> bool:
    """Reactivate a suspended organization. False when it was active."""
    return _organization_state_set(organization=organization, actor=actor, state=Organization.State.ACTIVE,
                                   action="organization.reactivated", reason=reason, via=via)


def audit_user_event(*, actor: User | None, user: User, action: str, details: dict) -> None:
    """One event in every organization the user belongs to (a platform-level one when it belongs to none)."""
    organizations = list(Organization.objects.filter(memberships__user=user)) or [None]
    for organization in organizations:
        audit_record(actor=actor, organization=organization, action=action, target=user, details=details)


def _user_active_set(*, user: User, actor: User, active: bool, via: str) -> bool:
    require_operator(actor)
    if user.pk == actor.pk:
        raise ValueError("An operator cannot deactivate or reactivate their own account here.")
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.is_active == active:
        return False
    with keeping_an_organization_admin(Organization.objects.filter(memberships__user=user)):
        user.is_active = active
        user.save(update_fields=["is_active"])
    audit_user_event(actor=actor, user=user, action="user.reactivated" if active else "user.deactivated",
                      details={"via": via})
    return True


@transaction.atomic
def user_deactivate(*, user: User, actor: User, via: str = OPERATOR_CONSOLE) -> bool:
    """Lock a user out (sessions and personal access tokens stop working). False when already inactive."""
    return _user_active_set(user=user, actor=actor, active=False, via=via)


@transaction.atomic
def user_reactivate(*, user: User, actor: User, via: str = OPERATOR_CONSOLE) -> bool:
    return _user_active_set(user=user, actor=actor, active=True, via=via)


class _OwnPasswordResetForm(PasswordResetForm):
    """Django's reset e-mail, for exactly one user, to that user's own address."""

    def __init__(self, *, user: User):
        super().__init__({"email": user.email})
        self.user = user

    def get_users(self, email):
        return [self.user]

    def send_mail(self, subject_template_name, email_template_name, context, from_email, to_email,
                  html_email_template_name=None):
        # Django's version logs and swallows a failed send; the operator must see it (and no event is written).
        subject = "".join(render_to_string(subject_template_name, context).splitlines())
        EmailMessage(subject, render_to_string(email_template_name, context), from_email, [to_email]).send()


@transaction.atomic
def user_password_reset_send(
    *, user: User, actor: User, domain: str, use_https: bool, via: str = OPERATOR_CONSOLE
) -> None:
    """E-mail the user a link to set their own password. Nobody else ever learns or sets it."""
    require_operator(actor)
    if not user.is_active:
        raise ValueError(f"{user.email} is deactivated: reactivate the account first.")
    form = _OwnPasswordResetForm(user=user)
    if not form.is_valid():
        raise ValueError(f"{user.email} has no valid e-mail address.")
    form.save(
        domain_override=domain,
        use_https=use_https,
        subject_template_name="konnect_admin/password_reset_subject.txt",
        email_template_name="konnect_admin/password_reset_email.txt",
        extra_email_context={"timeout_days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400)},
    )
    audit_user_event(actor=actor, user=user, action="user.password_reset_sent", details={"via": via})
