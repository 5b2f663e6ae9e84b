"""Invitations: an Organization Admin invites people by e-mail into chosen teams; the link lets them in once.

The link carries a random token (`secrets.token_urlsafe`); the row keeps only its SHA-256 digest, as API tokens
do, so the database never holds a usable link. The token is single use (accepting stamps `accepted_at`), expires
after INVITATION_TTL_HOURS (default 72), dies when the invitation is revoked, and a resend replaces it (the old
link stops working). The e-mail goes through Django's mail (the console backend in `make run`, SMTP in production).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from konnect_admin.models import Invitation, Membership, Organization, Team, User
from konnect_admin.models.tokens import token_digest
from konnect_admin.permissions import Action, forget_grants, require
from konnect_admin.services import audit_record, member_add


class InvitationRefused(ValueError):
    """The invitation cannot be made, resent or revoked (already a member, already invited, no longer pending)."""


class InvitationUnusable(Exception):
    """The link does not (or no longer) let anyone in. `reason` is one of REASONS: the page says which."""

    REASONS = {
        "unknown": "This invitation link is not valid. Check that you copied the whole link from the e-mail.",
        "expired": "This invitation has expired. Ask the person who invited you to send it again.",
        "accepted": "This invitation was already used. Log in with the account that accepted it.",
        "revoked": "This invitation was withdrawn. Ask an Organization Admin if you still need access.",
        "unavailable": "The organization of this invitation is not available at the moment.",
    }

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(self.REASONS[reason])


def invitation_ttl() -> timedelta:
    return timedelta(hours=settings.INVITATION_TTL_HOURS)


def invitation_link(*, base_url: str, token: str) -> str:
    return base_url.rstrip("/") + reverse("invitation_accept", args=[token])


def pending_invitations(*, organization: Organization):
    """Invitations not accepted nor revoked, expired ones included (they can be resent)."""
    return (Invitation.objects.filter(organization=organization, accepted_at__isnull=True, revoked_at__isnull=True)
            .select_related("invited_by").prefetch_related("teams"))


@transaction.atomic
def invitation_create(
    *, organization: Organization, actor: User, email: str, teams: Iterable[Team], base_url: str
) -> Invitation:
    """Invite `email` into `teams` of `organization` (Organization Admins only) and e-mail the link."""
    require(actor, Action.MEMBERS_MANAGE, organization)
    return invitation_issue(organization=organization, actor=actor, email=email, teams=teams, base_url=base_url)


def invitation_issue(
    *, organization: Organization, actor: User | None, email: str, teams: Iterable[Team], base_url: str,
    via: str = "",
) -> Invitation:
    """The invitation itself, for callers that checked who may invite: `invitation_create` (an Organization
    Admin), and the organization's creation by the platform (its first Organization Admin)."""
    email = User.objects.normalize_email(email.strip())
    teams = list(teams)
    if any(team.organization_id != organization.pk for team in teams):
        raise InvitationRefused("Choose teams of this organization.")
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise InvitationRefused(f"{email} is already a member of {organization.name}.")
    already = pending_invitations(organization=organization).filter(email__iexact=email)
    if already.filter(expires_at__gt=timezone.now()).exists():
        raise InvitationRefused(f"{email} already has a pending invitation: resend it from the list instead.")
    already.update(revoked_at=timezone.now())  # an expired one is superseded by the new one
    now = timezone.now()
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=organization, email=email, invited_by=actor if actor is not None and actor.pk else None,
        digest=token_digest(token), sent_at=now, expires_at=now + invitation_ttl(),
    )
    invitation.teams.set(teams)
    _send(invitation, token=token, base_url=base_url)
    details = {"email": email, "teams": sorted(team.name for team in teams)} | ({"via": via} if via else {})
    audit_record(actor=actor, organization=organization, action="invitation.created", target=invitation,
                 details=details)
    invitation.link = invitation_link(base_url=base_url, token=token)  # for the console that created it
    return invitation


@transaction.atomic
def invitation_resend(*, invitation: Invitation, actor: User, base_url: str) -> Invitation:
    """A new link (the old one stops working) and a new expiry, e-mailed again."""
    require(actor, Action.MEMBERS_MANAGE, invitation.organization)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at or invitation.revoked_at:
        raise InvitationRefused(f"The invitation of {invitation.email} was {invitation.status}: invite them again.")
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    invitation.digest, invitation.sent_at, invitation.expires_at = token_digest(token), now, now + invitation_ttl()
    invitation.save(update_fields=["digest", "sent_at", "expires_at"])
    _send(invitation, token=token, base_url=base_url)
    audit_record(actor=actor, organization=invitation.organization, action="invitation.resent", target=invitation,
                 details={"email": invitation.email})
    return invitation


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: User) -> None:
    require(actor, Action.MEMBERS_MANAGE, invitation.organization)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at or invitation.revoked_at:
        raise InvitationRefused(f"The invitation of {invitation.email} was already {invitation.status}.")
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_record(actor=actor, organization=invitation.organization, action="invitation.revoked", target=invitation,
                 details={"email": invitation.email})


def invitation_find(*, token: str, for_update: bool = False) -> Invitation:
    """The invitation a link's token opens, or InvitationUnusable saying why not."""
    queryset = Invitation.objects.select_related("organization")
    if for_update:
        queryset = queryset.select_for_update()
    invitation = queryset.filter(digest=token_digest(token)).first()
    if invitation is None:
        raise InvitationUnusable("unknown")
    if invitation.status != Invitation.Status.PENDING:
        raise InvitationUnusable(invitation.status)
    if invitation.organization.state != Organization.State.ACTIVE:
        raise InvitationUnusable("unavailable")
    return invitation


@transaction.atomic
def invitation_accept(
    *, token: str, user: User | None = None, first_name: str = "", last_name: str = "", password: str = ""
) -> tuple[Invitation, User]:
    """Join the invitation's organization and teams: as `user` (signed in, with the invited address), or as a
    new account with the invited address, the given name and password. The link is used up."""
    invitation = invitation_find(token=token, for_update=True)
    if user is None:
        try:
            with transaction.atomic():
                user = User.objects.create_user(email=invitation.email, password=password,
                                                first_name=first_name, last_name=last_name)
        except IntegrityError:
            raise InvitationRefused(f"An account for {invitation.email} exists already: log in to accept.") from None
    elif user.email.lower() != invitation.email.lower():
        raise InvitationRefused(f"This invitation is for {invitation.email}; you are logged in as {user.email}.")
    organization = invitation.organization
    teams = list(invitation.teams.all())
    member_add(organization=organization, user=user, actor=user)
    for team in teams:
        team.members.add(user)
    forget_grants(user)
    invitation.accepted_at, invitation.accepted_by = timezone.now(), user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(actor=user, organization=organization, action="invitation.accepted", target=invitation,
                 details={"email": invitation.email, "teams": sorted(team.name for team in teams)})
    return invitation, user


def _send(invitation: Invitation, *, token: str, base_url: str) -> None:
    context = {
        "invitation": invitation, "organization": invitation.organization, "link":
        invitation_link(base_url=base_url, token=token), "inviter": invitation.invited_by,
        "teams": [team.name for team in invitation.teams.all()], "ttl_hours": int(invitation_ttl().total_seconds() // 3600),
    }
    subject = "".join(render_to_string("konnect_admin/invitation_subject.txt", context).splitlines())
    EmailMessage(subject, render_to_string("konnect_admin/invitation_email.txt", context),
                 settings.DEFAULT_FROM_EMAIL, [invitation.email]).send()
