"""Retention of the secret-resolution log: rows older than SECRET_RESOLUTION_RETENTION_DAYS (30 by default) go.

The log holds references and outcomes, never values, so nothing needs shredding: the rows are deleted in
batches, and each organization that lost rows gets one audit event saying how many.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from konnect_admin.models import Organization
from konnect_admin.services import audit_record
from vault.models import SecretResolution

BATCH = 1000


def retention_days() -> int:
    return max(1, int(getattr(settings, "SECRET_RESOLUTION_RETENTION_DAYS", 30)))


def expired_resolutions(*, now: datetime | None = None) -> QuerySet[SecretResolution]:
    cutoff = (now or timezone.now()) - timedelta(days=retention_days())
    return SecretResolution.objects.filter(created_at__lt=cutoff)


def purge_plan(*, now: datetime | None = None) -> Counter:
    """Rows a purge would delete now, per organization id (nothing changes)."""
    rows = expired_resolutions(now=now).values("control_plane__organization_id").annotate(n=Count("id"))
    return Counter({row["control_plane__organization_id"]: row["n"] for row in rows})


def purge_execute(*, now: datetime | None = None,
                  progress: Callable[[int, int], None] = lambda done, total: None) -> Counter:
    """Delete expired rows, BATCH per transaction; returns rows deleted per organization id."""
    now = now or timezone.now()
    expired = expired_resolutions(now=now)
    total = expired.count()
    deleted: Counter = Counter()
    while batch := list(expired.values_list("pk", "control_plane__organization_id")[:BATCH]):
        with transaction.atomic():
            SecretResolution.objects.filter(pk__in=[pk for pk, _ in batch]).delete()
        deleted.update(organization_id for _, organization_id in batch)
        progress(deleted.total(), total)
    for organization in Organization.objects.filter(pk__in=list(deleted)):
        audit_record(actor=None, organization=organization, action="vault.resolution_log_purged",
                     details={"rows": deleted[organization.pk], "older_than_days": retention_days(),
                              "at": now.isoformat()})
    return deleted
