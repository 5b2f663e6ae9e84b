"""Konnect's blob API (`PUT/GET /v0/blobs/{blobId}`): raw payloads, encrypted at rest, kept for a TTL.

Who may read a blob is decided by who stored it — its scope (DESIGN.md §2: blobs are Debugger plaintext):

- A blob stored by a **data plane** (`Blob.control_plane` set) belongs to that control plane. It is read
  by the data planes of that control plane, and by people who may read that control plane's Debugger
  plaintext (`Action.DEBUG_PAYLOAD_READ` on it: Organization Admin, Control Plane Admin or Debug Session
  Creator of that control plane, held on it or on `*`).
- A blob stored by a **person** with a personal access token (`Blob.control_plane` empty) belongs to the
  organization. It is read only by people who may read the Debugger plaintext of every control plane of
  the organization (`DEBUG_PAYLOAD_READ` held on `*`: Organization Admin, Control Plane Admin or Debug
  Session Creator on `*`) — not by data planes, not by a role on one control plane.
- Everyone else — Viewers, Vault Admins, Control Plane Creators, the read-only Organization Admin, another
  control plane's data planes, another organization — gets 404, as if the blob did not exist.

Writing follows the same scopes: a data plane stores blobs of its control plane; a person stores blobs of the
organization, so needs what reading them needs (`DEBUG_PAYLOAD_READ` on `*`) — a role on one control plane
would otherwise write organization-wide data it cannot read back. Replacing an existing blob id also needs
the right to read it (so nobody swaps content under a reader of a scope they cannot read), and is refused
with 404, like reading it: a 403 would tell the caller the id exists in another scope.

`Blob.content_type` is the uploader's claim, kept as metadata only: the API never serves a blob with it
(debugger/api.py answers `application/octet-stream`, as an attachment, with `nosniff`).
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from debugger.models import Blob
from konnect_admin.models import ControlPlane, Organization, User
from konnect_admin.permissions import Action, can, can_on_every_control_plane

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
    """Store (or replace) a blob. A data plane writes as its control plane; a person writes for the organization,
    with the plaintext rights on every control plane that reading such a blob takes."""
    if user is not None and not can_on_every_control_plane(user, Action.DEBUG_PAYLOAD_READ, organization):
        raise PermissionDenied(
            "Storing a blob needs a role that reads Debugger payloads of every control plane (`*`)."
        )
    now = timezone.now()
    with transaction.atomic():
        current = Blob.objects.select_for_update().filter(organization=organization, region=region, key=key).first()
        if current is not None:
            if not blob_readable(current, control_plane=control_plane, user=user):
                raise Http404("No such blob.")  # as blob_get answers: nothing says the id exists elsewhere
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
        Blob.objects.select_related("organization", "control_plane__organization")
        .filter(organization=organization, region=region, key=key, expires_at__gt=timezone.now()).first()
    )
    if blob is None or not blob_readable(blob, control_plane=control_plane, user=user):
        raise Http404("No such blob.")
    return blob


def blob_readable(blob: Blob, *, control_plane: ControlPlane | None = None, user: User | None = None) -> bool:
    """Is the caller — a data plane of `control_plane`, or `user` — in the blob's scope (module docstring)?"""
    if control_plane is not None:
        return blob.control_plane_id == control_plane.pk
    if user is None:
        return False
    if blob.control_plane is not None:
        return can(user, Action.DEBUG_PAYLOAD_READ, blob.control_plane)
    return can_on_every_control_plane(user, Action.DEBUG_PAYLOAD_READ, blob.organization)
