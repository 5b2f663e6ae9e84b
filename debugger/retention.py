"""Retention: payloads go after 3 days, sessions after the organization's retention (15 days by default).

What is removed is crypto-shredded first: a session's data keys are destroyed before its rows are
deleted, so copies of the ciphertext (backups, replicas) become unreadable too.

On PostgreSQL payloads, logs and spans live in day partitions (debugger/partitions.py): expired payloads go
by dropping the days that ended PAYLOAD_RETENTION ago, not row by row; on SQLite they are deleted. Either
way a session's payload key is shredded as soon as none of its payloads is unexpired, whether or not the
rows are gone yet: rows of the newest expired day stay, unreadable, until their partition is dropped.
Logs and spans go with their session (its retention is the organization's, not a fixed number of days);
their partitions are dropped once older than every remaining session, when they can hold nothing.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import Exists, Min, OuterRef, Q
from django.utils import timezone

from debugger import partitions
from debugger.models import (
    ACTIVE_STATUSES,
    PAYLOAD_RETENTION,
    Blob,
    DebugSession,
    PayloadCapture,
    RequestLog,
    Span,
    Trace,
)
from debugger.services import SESSION_PURPOSES, session_data_keys_shred
from encryption_keys import keyring
from encryption_keys.envelope import DecryptionError, peek_dek_id
from encryption_keys.models import DataKey, Purpose
from konnect_admin.models import Organization
from konnect_admin.services import audit_record

BATCH = 500


@dataclass
class PurgeReport:
    sessions: int = 0
    traces: int = 0
    logs: int = 0
    payloads: int = 0
    blobs: int = 0
    data_keys_shredded: int = 0
    partitions_dropped: int = 0
    by_organization: Counter = field(default_factory=Counter)


def purge_plan(*, now: datetime | None = None) -> PurgeReport:
    """What a purge would remove now (counts only; nothing changes)."""
    now = now or timezone.now()
    sessions = DebugSession.objects.filter(retain_until__lte=now)
    payloads = PayloadCapture.objects.filter(expires_at__lte=now).exclude(trace__session__in=sessions)
    scope_refs = [keyring.control_plane_scope_ref(cp, pk) for cp, pk in sessions.values_list("control_plane_id", "pk")]
    return PurgeReport(
        sessions=len(scope_refs),
        traces=Trace.objects.filter(session__in=sessions).count(),
        logs=RequestLog.objects.filter(session__in=sessions).count(),
        payloads=payloads.count() + PayloadCapture.objects.filter(trace__session__in=sessions).count(),
        blobs=Blob.objects.filter(expires_at__lte=now).count(),
        data_keys_shredded=DataKey.objects.filter(purpose__in=SESSION_PURPOSES, scope_ref__in=scope_refs,
                                                  shredded_at__isnull=True).count(),
    )


def purge_execute(*, now: datetime | None = None,
                  progress: Callable[[str, int, int], None] = lambda step, done, total: None,
                  by_partition: bool | None = None) -> PurgeReport:
    """`by_partition=False` deletes expired payloads row by row even where they are partitioned (the retention
    benchmark's baseline); by default PostgreSQL drops their days and SQLite deletes."""
    now = now or timezone.now()
    report = PurgeReport()
    _purge_sessions(now, report, progress)
    if _partitioned(PayloadCapture) if by_partition is None else by_partition:
        _drop_payload_partitions(now, report)
    else:
        _purge_payloads(now, report, progress)
    report.data_keys_shredded += _shred_expired_payload_keys(now)
    _drop_session_partitions(report)
    _purge_blobs(now, report)
    for organization in Organization.objects.filter(pk__in=list(report.by_organization)):
        audit_record(actor=None, organization=organization, action="debugger.retention_purged",
                     details={"items": report.by_organization[organization.pk], "at": now.isoformat()})
    return report


def _purge_sessions(now, report: PurgeReport, progress) -> None:
    doomed = list(DebugSession.objects.filter(retain_until__lte=now).select_related("control_plane"))
    for index, session in enumerate(doomed, start=1):
        with transaction.atomic():
            report.data_keys_shredded += session_data_keys_shred(sessions=[session])
            report.traces += Trace.objects.filter(session=session).count()
            report.logs += RequestLog.objects.filter(session=session).count()
            report.payloads += PayloadCapture.objects.filter(trace__session=session).count()
            session.delete()
        report.sessions += 1
        report.by_organization[session.control_plane.organization_id] += 1
        progress("sessions", index, len(doomed))


def _purge_payloads(now, report: PurgeReport, progress) -> None:
    expired = PayloadCapture.objects.filter(expires_at__lte=now)
    total = expired.count()
    done = 0
    while ids := list(expired.values_list("pk", flat=True)[:BATCH]):
        rows = PayloadCapture.objects.filter(pk__in=ids)
        for org_id in rows.values_list("trace__session__control_plane__organization_id", flat=True):
            report.by_organization[org_id] += 1
        done += rows.delete()[1].get(PayloadCapture._meta.label, 0)
        progress("payloads", done, total)
    report.payloads += done


def _partitioned(model) -> bool:
    return partitions.enabled() and partitions.is_partitioned(model._meta.db_table)


def _drop_payload_partitions(now, report: PurgeReport) -> None:
    """Drop the days whose every payload has expired, then delete expired strays of the default partition."""
    table = PayloadCapture._meta.db_table
    dropped, rows = partitions.drop_before(table, now - PAYLOAD_RETENTION)
    strays = partitions.delete_default_before(table, now - PAYLOAD_RETENTION)
    report.partitions_dropped += dropped
    report.payloads += rows + strays


def _shred_expired_payload_keys(now) -> int:
    """Shred the payload keys of finished sessions none of whose payloads is unexpired any more.

    Candidates are the sessions with a live payload key, a set bounded by the last PAYLOAD_RETENTION days
    of sessions (older ones were shredded by an earlier run), so the cost does not grow with stored rows."""
    refs = (DataKey.objects.filter(purpose=Purpose.DEBUGGER_PAYLOAD, shredded_at__isnull=True)
            .exclude(scope_ref__startswith="blobs:").values_list("scope_ref", flat=True))
    session_ids = {_uuid(ref.rpartition("/")[2]) for ref in refs} - {None}
    if not session_ids:
        return 0
    unexpired = PayloadCapture.objects.filter(trace__session=OuterRef("pk"), expires_at__gt=now)
    done = (DebugSession.objects.filter(pk__in=session_ids).exclude(Q(status__in=ACTIVE_STATUSES, ends_at__gt=now))
            .exclude(Exists(unexpired)).select_related("control_plane"))
    return session_data_keys_shred(sessions=list(done), purposes=[Purpose.DEBUGGER_PAYLOAD],
                                   reason="debug session payloads expired")


def _uuid(value: str):
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _drop_session_partitions(report: PurgeReport) -> None:
    """Log and span partitions older than the oldest remaining session's start can hold no row: drop them.

    (Their rows were deleted with their sessions; a foreign key keeps any row from outliving its session.)"""
    if not _partitioned(Span):
        return
    oldest = DebugSession.objects.aggregate(start=Min("started_at"))["start"] or timezone.now()
    for model in (Span, RequestLog):
        report.partitions_dropped += partitions.drop_before(model._meta.db_table, oldest)[0]


def _purge_blobs(now, report: PurgeReport) -> None:
    expired = Blob.objects.filter(expires_at__lte=now)
    scopes = {(org, region, f"blobs:{cp or org}")
              for org, region, cp in expired.values_list("organization_id", "region", "control_plane_id")}
    for org_id in expired.values_list("organization_id", flat=True):
        report.by_organization[org_id] += 1
    report.blobs = expired.delete()[1].get(Blob._meta.label, 0)
    for organization_id, region, scope_ref in scopes:
        report.data_keys_shredded += _shred_unused_blob_keys(organization_id, region, scope_ref, now)


def _shred_unused_blob_keys(organization_id, region, scope_ref, now) -> int:
    """Shred the blob scope's retired data keys that no remaining blob was encrypted with."""
    owner = scope_ref.removeprefix("blobs:")
    remaining = Blob.objects.filter(organization_id=organization_id, region=region)
    remaining = remaining.filter(control_plane_id=owner) if owner != str(organization_id) else remaining.filter(
        control_plane__isnull=True)
    in_use = set()
    for blob in remaining.only("id", "data"):
        try:
            in_use.add(peek_dek_id(blob.data.envelope))
        except DecryptionError:
            continue
    unused = DataKey.objects.filter(
        organization_id=organization_id, region=region, purpose=Purpose.DEBUGGER_PAYLOAD, scope_ref=scope_ref,
        shredded_at__isnull=True, encrypt_until__lte=now,
    ).exclude(pk__in=in_use)
    ids = list(unused.values_list("pk", flat=True))
    DataKey.objects.filter(pk__in=ids).update(shredded_at=now, wrapped=None)
    for data_key_id in ids:
        keyring.data_key_cache().evict(data_key_id)
    if ids:
        keyring.invalidate_everywhere()
    return len(ids)
