"""Retention of the operational logs: rows older than a per-log setting are deleted, in batches.

The logs hold references, outcomes and encryption contexts, never plaintext or key material, so nothing
needs shredding. Each organization that lost rows gets one audit event per log saying how many.
Registered logs: see ``LOGS``; ``manage.py purge_logs`` runs them (dry run unless ``--yes``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from konnect_admin.models import Organization
from konnect_admin.services import audit_record

BATCH = 1000


@dataclass(frozen=True)
class LogRetention:
    label: str  # "secret-resolution log"
    model_label: str  # "vault.SecretResolution"
    organization_path: str  # lookup from a row to its organization id
    days_setting: str
    default_days: int
    audit_action: str

    def days(self) -> int:
        return max(1, int(getattr(settings, self.days_setting, self.default_days)))

    def expired(self, *, now: datetime | None = None) -> QuerySet:
        cutoff = (now or timezone.now()) - timedelta(days=self.days())
        return apps.get_model(self.model_label).objects.filter(created_at__lt=cutoff).order_by()

    def plan(self, *, now: datetime | None = None) -> Counter:
        """Rows a purge would delete now, per organization id (None: rows of no organization); nothing changes."""
        rows = self.expired(now=now).values(self.organization_path).annotate(n=Count("pk"))
        return Counter({row[self.organization_path]: row["n"] for row in rows})

    def execute(self, *, now: datetime | None = None,
                progress: Callable[[int, int], None] = lambda done, total: None) -> Counter:
        """Delete expired rows, BATCH per transaction; returns rows deleted per organization id."""
        now = now or timezone.now()
        expired = self.expired(now=now)
        total = expired.count()
        deleted: Counter = Counter()
        while batch := list(expired.values_list("pk", self.organization_path)[:BATCH]):
            with transaction.atomic():
                expired.model.objects.filter(pk__in=[pk for pk, _ in batch]).delete()
            deleted.update(organization_id for _, organization_id in batch)
            progress(deleted.total(), total)
        for organization in Organization.objects.filter(pk__in=[pk for pk in deleted if pk is not None]):
            audit_record(actor=None, organization=organization, action=self.audit_action,
                         details={"rows": deleted[organization.pk], "older_than_days": self.days(),
                                  "at": now.isoformat()})
        return deleted


LOGS: tuple[LogRetention, ...] = (
    LogRetention("secret-resolution log", "vault.SecretResolution", "control_plane__organization_id",
                 "SECRET_RESOLUTION_RETENTION_DAYS", 30, "vault.resolution_log_purged"),
    LogRetention("key-usage log (KMS calls)", "encryption_keys.KmsCall", "organization_id",
                 "KMS_CALL_LOG_RETENTION_DAYS", 90, "encryption_key.usage_log_purged"),
)
