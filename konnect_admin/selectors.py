"""Reads of the platform app, always scoped to the caller's organization and roles."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

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


def audit_event_list(*, user: User, organization: Organization, action_prefix: str = "") -> QuerySet[AuditEvent]:
    require(user, Action.AUDIT_VIEW, organization)
    queryset = AuditEvent.objects.filter(organization=organization).select_related("actor")
    if action_prefix:
        queryset = queryset.filter(action__startswith=action_prefix)
    return queryset
