"""Konnect's blob API (`PUT/GET /v0/blobs/{blobId}`): raw payloads, encrypted at rest, kept for a TTL."""

from __future__ import annotations

import re
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from debugger.models import Blob
from konnect_admin.models import ControlPlane, Organization, User
from konnect_admin.permissions import Action, can

BLOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._-]{0,199}")
DEFAULT_TTL_SECONDS = 3 * 24 * 3600
MAX_TTL_SECONDS = DEFAULT_TTL_SECONDS
MAX_BLOB_BYTES = 1024 * 1024


def blob_put(
    *,
    organization: Organization,
    region: str,
    key: str,
    data: bytes,
    content_type: str,
    ttl_seconds: int,
    control_plane: ControlPlane | None = None,
    user: User | None = None,
) -> Blob:
    """Store (or replace) a blob. A data plane writes as its control plane, a person needs debug rights."""
    if user is not None and not can(user, Action.DEBUG_SESSION_CREATE, organization):
        raise PermissionDenied("You need a role that may create debug sessions to store blobs.")
    now = timezone.now()
    with transaction.atomic():
        current = Blob.objects.select_for_update().filter(organization=organization, region=region, key=key).first()
        if current is not None:
            owner = current.control_plane or organization
            if (control_plane is not None and current.control_plane_id != control_plane.pk) or (
                user is not None and not can(user, Action.DEBUG_SESSION_CREATE, owner)
            ):
                raise PermissionDenied("This blob id belongs to another control plane.")
            current.delete()  # a new row: the ciphertext's AAD names the row, so values are never rewritten in place
        blob = Blob(
            organization=organization, region=region, key=key, control_plane=control_plane,
            content_type=content_type[:255], size=len(data), created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
        blob.data = data
        blob.save(force_insert=True)
    return blob


def blob_get(
    *, organization: Organization, region: str, key: str, control_plane: ControlPlane | None = None,
    user: User | None = None,
) -> Blob:
    """An unexpired blob the caller may read; 404 otherwise (other tenants' blobs are invisible)."""
    blob = (
        Blob.objects.select_related("control_plane")
        .filter(organization=organization, region=region, key=key, expires_at__gt=timezone.now()).first()
    )
    if blob is None:
        raise Http404("No such blob.")
    if control_plane is not None and blob.control_plane_id not in (None, control_plane.pk):
        raise Http404("No such blob.")
    if user is not None:
        target = blob.control_plane or organization
        if not can(user, Action.DEBUG_SESSION_VIEW, target):
            raise Http404("No such blob.")
    return blob
