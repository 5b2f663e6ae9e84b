"""System accounts: services (keyword-only, audited), selectors and `spat_…` token authentication.

Design: a system account is a `SystemAccount` row plus a User of its own that is a member of the account's
organization only. Teams (`Team.members`), role assignments (`RoleAssignment.user`) and `permissions.can/require`
take a User, so they work for a system account unchanged, and an API request with its token runs as that User
(`request.user`), through the same selectors and services as a personal access token. The User has no usable
password and an `.invalid` address; `authentication.EmailPasswordBackend` refuses it, so it never signs in to the
pages, and `selectors.member_list` leaves it out of "Members".

Tokens follow tokens.py: only a SHA-256 digest is stored, the text is shown once, every token expires
(ACCESS_TOKEN_* policy) and can be revoked; a token authenticates only while it is unrevoked and unexpired, its
account's User is active and still a member, and the organization is active.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.text import slugify

from konnect_admin.models import (
    ControlPlane,
    Membership,
    Organization,
    Role,
    RoleAssignment,
    SystemAccount,
    SystemAccountAccessToken,
    Team,
    User,
)
from konnect_admin.models.tokens import new_token, token_digest
from konnect_admin.permissions import Action, forget_grants, require
from konnect_admin.services import audit_record
from konnect_admin.tokens import _authenticate, access_token_lifetime

EMAIL_DOMAIN = "system-accounts.invalid"
# Roles a system account may hold directly (organization roles come with the predefined teams).
ASSIGNABLE_ROLES = [role for role in Role if role not in (Role.ORG_ADMIN, Role.ORG_ADMIN_READ_ONLY)]


def is_system_account(user) -> bool:
    """No query when the user was loaded with `select_related("system_account")` (as the session's user is)."""
    if not getattr(user, "pk", None):
        return False
    try:
        return user.system_account is not None
    except SystemAccount.DoesNotExist:
        return False


# --- selectors ---------------------------------------------------------------------------------------------


def system_account_list(*, user: User, organization: Organization) -> QuerySet[SystemAccount]:
    require(user, Action.MEMBERS_MANAGE, organization)
    return SystemAccount.objects.filter(organization=organization).select_related("user").order_by("name")


def system_account_get(*, user: User, organization: Organization, pk) -> SystemAccount:
    """404 for another organization's account; 403 for a caller who is not an Organization Admin."""
    return get_object_or_404(system_account_list(user=user, organization=organization), pk=pk)


# --- services ----------------------------------------------------------------------------------------------


def _clean_name(organization: Organization, name: str, *, exclude=None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError("Give the system account a name.", code="required")
    if len(name) > 100:
        raise ValidationError("A name has at most 100 characters.", code="max_length")
    taken = SystemAccount.objects.filter(organization=organization, name=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        raise ValidationError("A system account with this name already exists.", code="unique")
    return name


@transaction.atomic
def system_account_create(
    *, organization: Organization, actor: User, name: str, description: str = ""
) -> SystemAccount:
    require(actor, Action.MEMBERS_MANAGE, organization)
    name = _clean_name(organization, name)
    account_id = uuid.uuid4()
    user = User(email=f"{slugify(name)[:40] or 'system-account'}.{account_id.hex[:12]}@{EMAIL_DOMAIN}",
                first_name=name[:150])
    user.set_unusable_password()
    user.save()
    Membership.objects.create(organization=organization, user=user)
    account = SystemAccount.objects.create(id=account_id, organization=organization, user=user, name=name,
                                           description=description.strip(), created_by=actor)
    audit_record(actor=actor, organization=organization, action="system_account.created", target=account,
                 details={"name": name})
    return account


@transaction.atomic
def system_account_update(*, account: SystemAccount, actor: User, name: str, description: str = "") -> SystemAccount:
    require(actor, Action.MEMBERS_MANAGE, account.organization)
    name = _clean_name(account.organization, name, exclude=account)
    changed = {field: value for field, value in (("name", name), ("description", description.strip()))
               if getattr(account, field) != value}
    if changed:
        for field, value in changed.items():
            setattr(account, field, value)
        account.save(update_fields=[*changed, "updated_at"])
        User.objects.filter(pk=account.user_id).update(first_name=name[:150])
        audit_record(actor=actor, organization=account.organization, action="system_account.updated", target=account,
                     details={"changed": sorted(changed)})
    return account


@transaction.atomic
def system_account_delete(*, account: SystemAccount, actor: User) -> None:
    """Delete the account with its User: memberships, teams, roles and tokens go with it."""
    require(actor, Action.MEMBERS_MANAGE, account.organization)
    revoked = account.access_tokens.active().count()
    audit_record(actor=actor, organization=account.organization, action="system_account.deleted", target=account,
                 details={"name": account.name, "active_tokens": revoked})
    user = account.user
    account.delete()
    user.delete()


@transaction.atomic
def system_account_team_set(*, account: SystemAccount, actor: User, team: Team, member: bool) -> None:
    require(actor, Action.MEMBERS_MANAGE, account.organization)
    if team.organization_id != account.organization_id:
        raise ValueError("The team belongs to another organization.")
    (team.members.add if member else team.members.remove)(account.user)
    forget_grants(account.user)
    audit_record(actor=actor, organization=account.organization,
                 action="system_account.team_added" if member else "system_account.team_removed", target=account,
                 details={"team": team.name})


@transaction.atomic
def system_account_role_assign(
    *, account: SystemAccount, actor: User, role: str, control_plane: ControlPlane | None = None
) -> RoleAssignment:
    organization = account.organization
    require(actor, Action.MEMBERS_MANAGE, organization)
    if role not in ASSIGNABLE_ROLES:
        raise ValueError("Organization roles are given by the predefined teams.")
    if role == Role.ENVELOPE_MATERIALS and control_plane is not None:
        raise ValueError("Envelope Materials is an organization-wide role: assign it on * (all control planes).")
    if control_plane is not None and control_plane.organization_id != organization.pk:
        raise ValueError("The control plane belongs to another organization.")
    assignment, created = RoleAssignment.objects.get_or_create(
        organization=organization, user=account.user, role=role, control_plane=control_plane
    )
    if created:
        audit_record(actor=actor, organization=organization, action="system_account.role_assigned", target=account,
                     details={"role": role, "control_plane": str(control_plane.pk) if control_plane else "*"})
    forget_grants(account.user)
    return assignment


@transaction.atomic
def system_account_role_revoke(*, account: SystemAccount, actor: User, assignment: RoleAssignment) -> None:
    require(actor, Action.MEMBERS_MANAGE, account.organization)
    if assignment.user_id != account.user_id or assignment.organization_id != account.organization_id:
        raise ValueError("This role assignment is not the system account's.")
    details = {"role": assignment.role, "control_plane": str(assignment.control_plane_id or "*")}
    assignment.delete()
    forget_grants(account.user)
    audit_record(actor=actor, organization=account.organization, action="system_account.role_revoked",
                 target=account, details=details)


@transaction.atomic
def system_account_token_create(
    *, account: SystemAccount, actor: User, name: str, expires_in_days: int | None = None
) -> tuple[SystemAccountAccessToken, str]:
    """`expires_in_days` None gives the default lifetime; more than the maximum raises ValidationError."""
    require(actor, Action.MEMBERS_MANAGE, account.organization)
    expires_at = access_token_lifetime().expires_at(expires_in_days)
    text = new_token(SystemAccountAccessToken.PREFIX)
    token = SystemAccountAccessToken.objects.create(
        system_account=account, name=name, digest=token_digest(text), hint=text[:12], expires_at=expires_at,
        created_by=actor,
    )
    audit_record(actor=actor, organization=account.organization, action="system_account.token_created",
                 target=token, details={"system_account": str(account.pk), "expires_at": expires_at.isoformat()})
    return token, text


@transaction.atomic
def system_account_token_revoke(*, token: SystemAccountAccessToken, actor: User) -> bool:
    """False when the token was already revoked."""
    account = token.system_account
    require(actor, Action.MEMBERS_MANAGE, account.organization)
    token = SystemAccountAccessToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        return False
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(actor=actor, organization=account.organization, action="system_account.token_revoked",
                 target=token, details={"system_account": str(account.pk)})
    return True


def system_account_token_authenticate(text: str) -> SystemAccountAccessToken | None:
    usable = SystemAccountAccessToken.objects.filter(
        system_account__user__is_active=True,
        system_account__organization__state=Organization.State.ACTIVE,
        system_account__organization__memberships__user=F("system_account__user"),
    ).select_related("system_account__user", "system_account__organization")
    return _authenticate(usable, SystemAccountAccessToken.PREFIX, text)
