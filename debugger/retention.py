"""Retention: payloads go after 3 days, sessions after the organization's retention (15 days by default).

What is removed is crypto-shredded first: a session's data keys are destroyed before its rows are
deleted, so copies of the ciphertext (backups, replicas) become unreadable too.

On PostgreSQL payloads, logs and spans live in day partitions (debugger/partitions.py): expired payloads go
by dropping the days that ended PAYLOAD_RETENTION ago, not row by row; on SQLite they are deleted. With
partitions, a session's payload key is shredded as soon as its last payload has expired, whether or not the
rows are gone yet: rows of the newest expired day stay, unreadable, until their partition is dropped. On
SQLite it is shredded once its payloads are deleted, as before.
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
from django.db.models import Min
from django.db.models.functions import Coalesce
from django.utils import timezone

from debugger import partitions
from debugger.ingest import LATE_DATA_GRACE
from debugger.models import (
    PAYLOAD_RETENTION,
    Blob,
    DebugSession,
    PayloadCapture,
    RequestLog,
    SessionStatus,
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
        report.data_keys_shredded += _shred_expired_payload_keys(now)
    else:
        _purge_payloads(now, report, progress)
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
    touched: set = set()
    while ids := list(expired.values_list("pk", flat=True)[:BATCH]):
        rows = PayloadCapture.objects.filter(pk__in=ids)
        touched |= set(rows.values_list("trace__session_id", flat=True))
        for org_id in rows.values_list("trace__session__control_plane__organization_id", flat=True):
            report.by_organization[org_id] += 1
        done += rows.delete()[1].get(PayloadCapture._meta.label, 0)
        progress("payloads", done, total)
    report.payloads += done
    # A session whose payloads are all gone no longer needs its payload key: shred it.
    emptied = (DebugSession.objects.filter(pk__in=touched).exclude(traces__payloads__isnull=False)
               .select_related("control_plane"))
    finished = [session for session in emptied if not session.is_active]
    report.data_keys_shredded += session_data_keys_shred(sessions=finished, purposes=[Purpose.DEBUGGER_PAYLOAD])


def _partitioned(model) -> bool:
    return partitions.enabled() and partitions.is_partitioned(model._meta.db_table)


def _drop_payload_partitions(now, report: PurgeReport) -> None:
    """Drop the days whose every payload has expired."""
    dropped, rows = partitions.drop_before(PayloadCapture._meta.db_table, now - PAYLOAD_RETENTION)
    report.partitions_dropped += dropped
    report.payloads += rows


def _shred_expired_payload_keys(now) -> int:
    """Shred the payload keys of the sessions whose every payload has expired, whether or not its day is dropped.

    A session's payloads are all stored before it ends plus LATE_DATA_GRACE (ingest refuses later ones) and
    expire PAYLOAD_RETENTION after they are stored, so the session's end says when the last one expires: the
    session table answers, without reading a payload row. Candidates are the sessions with a live payload key
    (older ones were shredded by an earlier run), so the cost does not grow with the stored rows."""
    refs = (DataKey.objects.filter(purpose=Purpose.DEBUGGER_PAYLOAD, shredded_at__isnull=True)
            .exclude(scope_ref__startswith="blobs:").values_list("scope_ref", flat=True))
    session_ids = {_uuid(ref.rpartition("/")[2]) for ref in refs} - {None}
    if not session_ids:
        return 0
    last_stored = now - PAYLOAD_RETENTION - LATE_DATA_GRACE
    expired = (DebugSession.objects.filter(pk__in=session_ids).alias(end=Coalesce("ended_at", "ends_at"))
               .filter(end__lte=last_stored).exclude(status=SessionStatus.PENDING).select_related("control_plane"))
    return session_data_keys_shred(sessions=list(expired), purposes=[Purpose.DEBUGGER_PAYLOAD],
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
