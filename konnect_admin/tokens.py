"""Issuing, revoking and authenticating API tokens. The token text is shown once and never stored.

Every token expires: personal access tokens after ACCESS_TOKEN_DEFAULT_DAYS unless the caller picks a lifetime up to
ACCESS_TOKEN_MAX_DAYS; data-plane tokens likewise with DATA_PLANE_TOKEN_*. A token authenticates only while it is
unrevoked, unexpired and its organization is active (a suspended organization's tokens answer 401); a personal access
token also needs its user to be active and still a member of the token's organization.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from konnect_admin.models import (
    ControlPlane,
    DataPlaneToken,
    Organization,
    PersonalAccessToken,
    SystemAccountAccessToken,
    User,
)
from konnect_admin.models.tokens import new_token, token_digest
from konnect_admin.permissions import Action, require
from konnect_admin.services import OPERATOR_CONSOLE, audit_record, require_operator

LIFETIME_CHOICES_DAYS = (30, 90, 180, 365, 730)


@dataclass(frozen=True)
class TokenLifetime:
    """How long a kind of token may live, in days: what a new token gets by default, and the most it may get."""

    default_days: int
    max_days: int

    def __post_init__(self):
        if not 1 <= self.default_days <= self.max_days:
            raise ImproperlyConfigured(
                f"A token's default lifetime ({self.default_days} days) must be between 1 day and its maximum "
                f"({self.max_days} days): check the *_TOKEN_DEFAULT_DAYS and *_TOKEN_MAX_DAYS settings."
            )

    def choices(self) -> list[int]:
        """The lifetimes a form offers: the usual ones up to the maximum, and always the default."""
        return sorted({days for days in LIFETIME_CHOICES_DAYS if days <= self.max_days} | {self.default_days})

    def expires_at(self, days: int | None, *, now: datetime | None = None) -> datetime:
        """The expiry of a token issued `now` for `days` (None: the default); refuses what the policy does not allow."""
        days = self.default_days if days is None else days
        if not isinstance(days, int) or isinstance(days, bool) or days < 1:
            raise ValidationError("Choose how many days the token stays valid.", code="token_lifetime_missing")
        if days > self.max_days:
            raise ValidationError(
                "A token may be valid for at most %(max)d days.", code="token_lifetime_too_long",
                params={"max": self.max_days},
            )
        return (now or timezone.now()) + timedelta(days=days)


def access_token_lifetime() -> TokenLifetime:
    return TokenLifetime(settings.ACCESS_TOKEN_DEFAULT_DAYS, settings.ACCESS_TOKEN_MAX_DAYS)


def data_plane_token_lifetime() -> TokenLifetime:
    return TokenLifetime(settings.DATA_PLANE_TOKEN_DEFAULT_DAYS, settings.DATA_PLANE_TOKEN_MAX_DAYS)


@transaction.atomic
def personal_access_token_create(
    *, user: User, organization: Organization, name: str, expires_in_days: int | None = None
) -> tuple[PersonalAccessToken, str]:
    """`expires_in_days` None gives the default lifetime; more than the maximum raises ValidationError."""
    require(user, Action.ORG_VIEW, organization)
    expires_at = access_token_lifetime().expires_at(expires_in_days)
    text = new_token(PersonalAccessToken.PREFIX)
    token = PersonalAccessToken.objects.create(
        user=user, organization=organization, name=name, digest=token_digest(text), hint=text[:12],
        expires_at=expires_at,
    )
    audit_record(actor=user, organization=organization, action="access_token.created", target=token,
                 details={"expires_at": expires_at.isoformat()})
    return token, text


@transaction.atomic
def personal_access_token_revoke(*, user: User, token: PersonalAccessToken) -> None:
    if token.user_id != user.pk:
        raise PermissionError("Only the owner can revoke a personal access token.")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(actor=user, organization=token.organization, action="access_token.revoked", target=token)


@transaction.atomic
def data_plane_token_create(
    *, actor: User, control_plane: ControlPlane, name: str, expires_in_days: int | None = None
) -> tuple[DataPlaneToken, str]:
    """`expires_in_days` None gives the default lifetime; more than the maximum raises ValidationError."""
    require(actor, Action.CONTROL_PLANE_ADMIN, control_plane)
    expires_at = data_plane_token_lifetime().expires_at(expires_in_days)
    text = new_token(DataPlaneToken.PREFIX)
    token = DataPlaneToken.objects.create(
        control_plane=control_plane, name=name, digest=token_digest(text), hint=text[:12], created_by=actor,
        expires_at=expires_at,
    )
    audit_record(actor=actor, organization=control_plane.organization, action="data_plane_token.created",
                 target=token, details={"control_plane": str(control_plane.pk), "expires_at": expires_at.isoformat()})
    return token, text


@transaction.atomic
def data_plane_token_revoke(*, actor: User, token: DataPlaneToken) -> None:
    require(actor, Action.CONTROL_PLANE_ADMIN, token.control_plane)
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(actor=actor, organization=token.control_plane.organization, action="data_plane_token.revoked",
                 target=token)


@transaction.atomic
def token_force_revoke(
    *, token: PersonalAccessToken | DataPlaneToken | SystemAccountAccessToken, operator: User,
    via: str = OPERATOR_CONSOLE,
) -> bool:
    """A platform operator revokes any token (a leaked one, say), recorded in the tenant's audit log.

    False when the token was already revoked."""
    require_operator(operator)
    token = type(token).objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        return False
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    if isinstance(token, PersonalAccessToken):
        organization, action = token.organization, "access_token.revoked"
    elif isinstance(token, SystemAccountAccessToken):
        organization, action = token.system_account.organization, "system_account.token_revoked"
    else:
        organization, action = token.control_plane.organization, "data_plane_token.revoked"
    audit_record(actor=operator, organization=organization, action=action, target=token,
                 details={"via": via, "forced": True})
    return True


def _authenticate(queryset, prefix: str, text: str):
    """The active token whose digest matches `text` in `queryset` (already narrowed to usable tokens), or None."""
    if not text or not text.startswith(f"{prefix}_"):
        return None
    token = queryset.active().filter(digest=token_digest(text)).first()
    if token is not None:
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            queryset.model.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def personal_access_token_authenticate(text: str) -> PersonalAccessToken | None:
    usable = PersonalAccessToken.objects.filter(
        user__is_active=True,
        organization__state=Organization.State.ACTIVE,
        # Still a member: a token outlives nothing its user lost.
        organization__memberships__user=F("user"),
    ).select_related("user", "organization")
    return _authenticate(usable, PersonalAccessToken.PREFIX, text)


def data_plane_token_authenticate(text: str) -> DataPlaneToken | None:
    usable = DataPlaneToken.objects.filter(
        control_plane__organization__state=Organization.State.ACTIVE
    ).select_related("control_plane__organization")
    return _authenticate(usable, DataPlaneToken.PREFIX, text)
