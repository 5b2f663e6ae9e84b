"""Issuing, revoking and authenticating API tokens. The token text is shown once and never stored."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from konnect_admin.models import ControlPlane, DataPlaneToken, Organization, PersonalAccessToken, User
from konnect_admin.models.tokens import new_token, token_digest
from konnect_admin.permissions import Action, require
from konnect_admin.services import OPERATOR_CONSOLE, audit_record, require_operator


@transaction.atomic
def personal_access_token_create(
    *, user: User, organization: Organization, name: str, expires_at=None
) -> tuple[PersonalAccessToken, str]:
    require(user, Action.ORG_VIEW, organization)
    text = new_token(PersonalAccessToken.PREFIX)
    token = PersonalAccessToken.objects.create(
        user=user, organization=organization, name=name, digest=token_digest(text), hint=text[:12],
        expires_at=expires_at,
    )
    audit_record(actor=user, organization=organization, action="access_token.created", target=token)
    return token, text


@transaction.atomic
def personal_access_token_revoke(*, user: User, token: PersonalAccessToken) -> None:
    if token.user_id != user.pk:
        raise PermissionError("Only the owner can revoke a personal access token.")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(actor=user, organization=token.organization, action="access_token.revoked", target=token)


@transaction.atomic
def data_plane_token_create(*, actor: User, control_plane: ControlPlane, name: str) -> tuple[DataPlaneToken, str]:
    require(actor, Action.CONTROL_PLANE_ADMIN, control_plane)
    text = new_token(DataPlaneToken.PREFIX)
    token = DataPlaneToken.objects.create(
        control_plane=control_plane, name=name, digest=token_digest(text), hint=text[:12], created_by=actor
    )
    audit_record(actor=actor, organization=control_plane.organization, action="data_plane_token.created",
                 target=token, details={"control_plane": str(control_plane.pk)})
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
    *, token: PersonalAccessToken | DataPlaneToken, operator: User, via: str = OPERATOR_CONSOLE
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
    else:
        organization, action = token.control_plane.organization, "data_plane_token.revoked"
    audit_record(actor=operator, organization=organization, action=action, target=token,
                 details={"via": via, "forced": True})
    return True


def _authenticate(model, text: str):
    if not text or not text.startswith(f"{model.PREFIX}_"):
        return None
    token = model.objects.active().filter(digest=token_digest(text)).first()
    if token is not None:
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            model.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def personal_access_token_authenticate(text: str) -> PersonalAccessToken | None:
    token = _authenticate(PersonalAccessToken, text)
    if token is None or not token.user.is_active:
        return None
    return token


def data_plane_token_authenticate(text: str) -> DataPlaneToken | None:
    return _authenticate(DataPlaneToken, text)
