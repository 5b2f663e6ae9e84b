"""Reads of the platform app, always scoped to the caller's organization and roles."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from konnect_admin.models import AuditEvent, ControlPlane, DataPlaneToken, Membership, Organization, User
from konnect_admin.permissions import Action, require, visible_control_plane_ids


def organizations_of(*, user: User) -> QuerySet[Organization]:
    return Organization.objects.filter(memberships__user=user, state=Organization.State.ACTIVE).order_by("name")


def control_plane_list(*, user: User, organization: Organization) -> QuerySet[ControlPlane]:
    queryset = ControlPlane.objects.filter(organization=organization)
    visible = visible_control_plane_ids(user, organization)
    if visible is not None:
        queryset = queryset.filter(pk__in=visible)
    return queryset.order_by("name")


def control_plane_get(*, user: User, organization: Organization, pk, action: Action = Action.CONTROL_PLANE_VIEW):
    """404 for another organization's control plane or one the user cannot see; 403 for a missing right."""
    control_plane = get_object_or_404(control_plane_list(user=user, organization=organization), pk=pk)
    control_plane.organization = organization  # the row was found under it: no query to read it back
    require(user, action, control_plane)
    return control_plane


def member_list(*, user: User, organization: Organization) -> QuerySet[Membership]:
    require(user, Action.MEMBERS_VIEW, organization)
    return (
        Membership.objects.filter(organization=organization, user__system_account__isnull=True)
        .select_related("user")
        .order_by("user__email")
    )


def data_plane_tokens_issued_by(*, organization: Organization, user: User) -> QuerySet[DataPlaneToken]:
    """The live data-plane tokens `user` issued on `organization`'s control planes (what removing them revokes)."""
    return DataPlaneToken.objects.active().filter(control_plane__organization=organization, created_by=user)


def audit_event_list(
    *, user: User, organization: Organization, actor: str = "", action: str = "", target: str = "",
    since: date | None = None, until: date | None = None,
) -> QuerySet[AuditEvent]:
    """The organization's events, newest first. `action` ending in "." is a family (`encryption_key.`); `target`
    matches part of the target's name or its exact id; `since`/`until` are whole days in the active time zone."""
    require(user, Action.AUDIT_VIEW, organization)
    queryset = AuditEvent.objects.filter(organization=organization).select_related("actor")
    if actor:
        queryset = queryset.filter(actor_label=actor)
    if action:
        queryset = queryset.filter(action__startswith=action) if action.endswith(".") else queryset.filter(action=action)
    if target:
        queryset = queryset.filter(Q(target_label__icontains=target) | Q(target_id=target))
    if since:
        queryset = queryset.filter(created_at__gte=_start_of(since))
    if until:
        queryset = queryset.filter(created_at__lt=_start_of(until + timedelta(days=1)))
    return queryset


def audit_actor_labels(*, user: User, organization: Organization) -> list[str]:
    """Who has acted in the organization (emails as recorded, and "system"): the audit log's actor choices."""
    require(user, Action.AUDIT_VIEW, organization)
    return list(AuditEvent.objects.filter(organization=organization).order_by().values_list(
        "actor_label", flat=True).distinct())


def recent_activity(*, organization: Organization, limit: int = 8, routine: frozenset[str]) -> QuerySet[AuditEvent]:
    """The Overview's feed: what people did and what the system did that matters, without its routine checks."""
    return (AuditEvent.objects.filter(organization=organization).exclude(actor__isnull=True, action__in=routine)
            .select_related("actor")[:limit])


def routine_activity_count(*, organization: Organization, since: datetime, routine: frozenset[str]) -> int:
    return AuditEvent.objects.filter(organization=organization, actor__isnull=True, action__in=routine,
                                     created_at__gte=since).count()


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))
