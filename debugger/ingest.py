"""Writes made by data planes: start sessions, store traces with spans, payload captures and logs.

Each call writes in one transaction: if any value cannot be encrypted (no data key: KMS down, key
disabled), `EncryptionUnavailable` propagates and nothing of the request is stored — no partial trace.
What a session did not ask to capture is dropped here, whatever the data plane sends.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import F
from django.http import Http404
from django.utils import timezone

from debugger import partitions, rows
from debugger.attributes import trace_names
from debugger.models import (
    ACTIVE_STATUSES,
    PAYLOAD_RETENTION,
    DebugSession,
    PayloadCapture,
    RequestLog,
    SessionStatus,
    Span,
    Trace,
)
from debugger.schemas import LogIn, PayloadIn, TraceIn, TracePayloadIn
from konnect_admin.models import ControlPlane

LATE_DATA_GRACE = timedelta(minutes=5)  # payloads and logs of already-stored traces, after the session ended


@dataclass(frozen=True, slots=True)
class CaptureStore:
    """Where payloads and logs go. The app uses the encrypted models; the benchmark swaps in plaintext twins."""

    payload_model: type = PayloadCapture
    log_model: type = RequestLog


ENCRYPTED_STORE = CaptureStore()


class SessionClosed(Exception):
    code = "session_closed"

    def __init__(self, session: DebugSession):
        self.session = session
        super().__init__(f"Debug session {session.pk} is {session.get_status_display().lower()}; it takes no more data.")


class UnknownTraces(Exception):
    def __init__(self, positions: list[int]):
        self.positions = positions
        super().__init__("These payloads name traces that are not in this session.")


@dataclass
class IngestResult:
    session: DebugSession
    accepted: int = 0
    duplicates: int = 0
    dropped: int = 0
    dropped_attributes: int = 0
    dropped_trace_ids: list[str] = field(default_factory=list)


# --- sessions ----------------------------------------------------------------------------------------------


def sessions_expire(*, control_plane: ControlPlane | None = None) -> int:
    """Mark active sessions past their end as timed out."""
    overdue = DebugSession.objects.filter(status__in=ACTIVE_STATUSES, ends_at__lte=timezone.now())
    if control_plane is not None:
        overdue = overdue.filter(control_plane=control_plane)
    return overdue.update(status=SessionStatus.TIMED_OUT, ended_at=F("ends_at"))


def sessions_for_data_plane(*, control_plane: ControlPlane) -> list[DebugSession]:
    """The sessions a data plane of this control plane should sample now; pending ones start."""
    sessions_expire(control_plane=control_plane)
    with transaction.atomic():
        for session in DebugSession.objects.select_for_update().filter(
            control_plane=control_plane, status=SessionStatus.PENDING
        ):
            _start(session)
    return list(
        DebugSession.objects.filter(control_plane=control_plane, status=SessionStatus.IN_PROGRESS)
        .select_related("control_plane")
        .order_by("created_at")
    )


def session_finish(*, control_plane: ControlPlane, session_id) -> DebugSession:
    """The data plane is done with a session (it stops sampling on its side too)."""
    with transaction.atomic():
        session = _locked_session(control_plane, session_id)
        if session.status in ACTIVE_STATUSES:
            session.status = SessionStatus.COMPLETED
            session.ended_at = timezone.now()
            session.save(update_fields=["status", "ended_at"])
    return session


def remaining_samples(session: DebugSession) -> int:
    return max(session.max_samples - session.samples_taken, 0)


def _start(session: DebugSession) -> None:
    now = timezone.now()
    session.status = SessionStatus.IN_PROGRESS
    session.started_at = now
    session.ends_at = now + timedelta(seconds=session.duration_seconds)
    session.save(update_fields=["status", "started_at", "ends_at"])


def _locked_session(control_plane: ControlPlane, session_id) -> DebugSession:
    session = (
        DebugSession.objects.select_for_update().select_related("control_plane")
        .filter(pk=session_id, control_plane=control_plane).first()
    )
    if session is None:
        raise Http404("No such debug session on this control plane.")
    return session


def _open_session(control_plane: ControlPlane, session_id, *, late_data: bool) -> DebugSession:
    """The session, read without a lock; a pending one starts (in its own short transaction) on its first data."""
    session = (DebugSession.objects.select_related("control_plane")
               .filter(pk=session_id, control_plane=control_plane).first())
    if session is None:
        raise Http404("No such debug session on this control plane.")
    if session.status == SessionStatus.PENDING:
        with transaction.atomic():
            session = _locked_session(control_plane, session_id)
            if session.status == SessionStatus.PENDING:
                _start(session)
    if session.is_active:
        return session
    ended = session.ended_at or session.ends_at
    if late_data and session.status != SessionStatus.CANCELLED and timezone.now() < ended + LATE_DATA_GRACE:
        return session
    raise SessionClosed(session)


# --- traces, payloads, logs ---------------------------------------------------------------------------------


def traces_ingest(*, control_plane: ControlPlane, session_id, traces: list[TraceIn],
                  store: CaptureStore = ENCRYPTED_STORE) -> IngestResult:
    """Store traces with their spans, payloads and logs, all or nothing. A trace id the session holds already is
    a duplicate (a retried batch is acknowledged, never stored twice); traces past max_samples are dropped.

    The session row is not locked while the rows are written. Trace rows go in first with `ON CONFLICT DO
    NOTHING` (a concurrent request with the same trace ids waits for the first to commit, then sees
    duplicates); the session's counter is raised last, by one conditional UPDATE that also checks the session
    is still open and has room — so the row is locked only from that statement to the commit. A batch that
    would pass max_samples, by the unlocked read or because that UPDATE matched nothing (a concurrent request
    took the room), locks the row and keeps the first traces that fit: the count stays exact."""
    sessions_expire(control_plane=control_plane)
    partitions.ready()  # the day's partitions, were the scheduler down
    try:
        session = _open_session(control_plane, session_id, late_data=False)
    except SessionClosed as closed:
        if _all_stored(closed.session, traces):
            return IngestResult(session=closed.session, duplicates=len(traces))  # a retry of a batch that was stored
        raise
    result = IngestResult(session=session)
    unique, seen = [], set()
    for trace in traces:
        if trace.trace_id in seen:
            result.duplicates += 1
        else:
            seen.add(trace.trace_id)
            unique.append(trace)
    _lease_ahead(store, session, payload_values=3 * sum(len(trace.payloads) for trace in unique),
                 log_values=sum(len(trace.logs) for trace in unique))
    with transaction.atomic():
        now = timezone.now()
        trace_rows = sorted((_trace_row(session, trace, now) for trace in unique), key=lambda row: row["trace_id"])
        inserted = {trace_id: pk for pk, trace_id in rows.insert_new(
            Trace, trace_rows, unique=("session", "trace_id"), returning=("id", "trace_id"))}
        fresh = [trace for trace in unique if trace.trace_id in inserted]
        result.duplicates += len(unique) - len(fresh)
        if not fresh:
            return result
        counted = False
        if session.samples_taken + len(fresh) > session.max_samples:
            fresh = _keep_what_fits(session, fresh, inserted, store, result)
            counted = True
        _write_children(session, fresh, inserted, store, result)
        if not counted and not _count(session, len(fresh), now):
            fresh = _keep_what_fits(session, fresh, inserted, store, result)
        result.accepted = len(fresh)
    return result


def _all_stored(session: DebugSession, traces: list[TraceIn]) -> bool:
    wanted = {trace.trace_id for trace in traces}
    return len(wanted) == Trace.objects.filter(session=session, trace_id__in=wanted).count()


def _write_children(session: DebugSession, fresh: list[TraceIn], inserted: dict[str, int], store: CaptureStore,
                    result: IngestResult) -> None:
    spans, payloads, logs = [], [], []
    now = timezone.now()
    ids = iter(rows.uuid4s(sum(len(trace.payloads) + len(trace.logs) for trace in fresh)))
    for trace in fresh:
        trace_pk = inserted[trace.trace_id]
        for span in trace.spans:
            attributes, dropped = span.safe_attributes()
            result.dropped_attributes += dropped
            spans.append({"trace_id": trace_pk, "span_id": span.span_id, "parent_span_id": span.parent_span_id or "",
                          "name": span.name, "start_ns": span.start_time_unix_nano,
                          "end_ns": span.end_time_unix_nano, "attributes": attributes})
        for payload in trace.payloads:
            row = _payload_row(session, trace_pk, payload, now, next(ids))
            if row is not None:
                payloads.append(row)
        logs += [_log_row(session, log, next(ids), default_trace_id=trace.trace_id) for log in trace.logs]
    rows.write(Span, spans)
    _store_captures(store, session, payloads, logs)


def _count(session: DebugSession, taken: int, now: datetime) -> bool:
    """Add `taken` to the session's counter if it is open and has the room; complete it when full. No lock
    before this statement; the row stays locked from here to the commit."""
    pk = DebugSession._meta.pk.get_db_prep_value(session.pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE debugger_debugsession SET samples_taken = samples_taken + %s, "
            "status = CASE WHEN samples_taken + %s >= max_samples THEN %s ELSE status END, "
            "ended_at = CASE WHEN samples_taken + %s >= max_samples THEN %s ELSE ended_at END "
            "WHERE id = %s AND status = %s AND ends_at > %s AND samples_taken + %s <= max_samples "
            "RETURNING samples_taken, status",
            [taken, taken, SessionStatus.COMPLETED, taken, connection.ops.adapt_datetimefield_value(now), pk,
             SessionStatus.IN_PROGRESS, connection.ops.adapt_datetimefield_value(now), taken],
        )
        counted = cursor.fetchone()
    if counted is None:
        return False
    session.samples_taken, session.status = counted
    if session.status == SessionStatus.COMPLETED:
        session.ended_at = now
    return True


def _keep_what_fits(session: DebugSession, fresh: list[TraceIn], inserted: dict[str, int], store: CaptureStore,
                    result: IngestResult) -> list[TraceIn]:
    """Near max_samples: lock the session row, keep the first traces that fit, delete the others' rows and count.

    Raises SessionClosed (rolling the request back) when the session closed meanwhile."""
    locked = _locked_session(session.control_plane, session.pk)
    if not locked.is_active:
        raise SessionClosed(locked)
    room = max(locked.max_samples - locked.samples_taken, 0)
    kept, over = fresh[:room], fresh[room:]
    if over:
        ids = [inserted[trace.trace_id] for trace in over]
        store.log_model.objects.filter(session=session, trace_id__in=[trace.trace_id for trace in over]).delete()
        Trace.objects.filter(pk__in=ids).delete()  # with their spans and payload captures (cascade)
    session.samples_taken = locked.samples_taken + len(kept)
    update = ["samples_taken"]
    if session.samples_taken >= locked.max_samples:
        session.status, session.ended_at = SessionStatus.COMPLETED, timezone.now()
        update += ["status", "ended_at"]
    session.save(update_fields=update)
    result.dropped, result.dropped_trace_ids = len(over), [trace.trace_id for trace in over]
    return kept


def payloads_ingest(*, control_plane: ControlPlane, session_id, payloads: list[TracePayloadIn],
                    store: CaptureStore = ENCRYPTED_STORE) -> IngestResult:
    sessions_expire(control_plane=control_plane)
    partitions.ready()  # the day's partitions, were the scheduler down
    session = _open_session(control_plane, session_id, late_data=True)
    with transaction.atomic():
        traces = {t.trace_id: t for t in Trace.objects.filter(
            session=session, trace_id__in={p.trace_id for p in payloads})}
        unknown = [index for index, payload in enumerate(payloads) if payload.trace_id not in traces]
        if unknown:
            raise UnknownTraces(unknown)
        stored = set(store.payload_model.objects.filter(trace__in=traces.values()).values_list("trace__trace_id", "kind"))
        result, captures, now = IngestResult(session=session), [], timezone.now()
        ids = iter(rows.uuid4s(len(payloads)))
        for payload in payloads:
            if (payload.trace_id, payload.kind) in stored:
                result.duplicates += 1
                continue
            stored.add((payload.trace_id, payload.kind))
            row = _payload_row(session, traces[payload.trace_id].pk, payload, now, next(ids))
            if row is None:
                result.dropped += 1
            else:
                captures.append(row)
        _store_captures(store, session, captures, [])
        result.accepted = len(captures)
    return result


def logs_ingest(*, control_plane: ControlPlane, session_id, logs: list[LogIn],
                store: CaptureStore = ENCRYPTED_STORE) -> IngestResult:
    sessions_expire(control_plane=control_plane)
    partitions.ready()  # the day's partitions, were the scheduler down
    session = _open_session(control_plane, session_id, late_data=True)
    with transaction.atomic():
        result = IngestResult(session=session)
        if not session.capture_logs:
            result.dropped = len(logs)
            return result
        pks = rows.uuid4s(len(logs))
        _store_captures(store, session, [], [_log_row(session, log, pk) for log, pk in zip(logs, pks, strict=True)])
        result.accepted = len(logs)
    return result


def _store_captures(store: CaptureStore, session: DebugSession, payloads: list[dict], logs: list[dict]) -> None:
    """Seal and insert; raises EncryptionUnavailable (rolling the whole request back) without a data key."""
    if payloads:
        rows.write(store.payload_model, payloads, scope_owner=store.payload_model(trace=Trace(session=session)))
    if logs and session.capture_logs:
        rows.write(store.log_model, logs, scope_owner=store.log_model(session=session))


def _lease_ahead(store: CaptureStore, session: DebugSession, *, payload_values: int, log_values: int) -> None:
    rows.lease_ahead(store.payload_model, store.payload_model(trace=Trace(session=session)), payload_values)
    if session.capture_logs:
        rows.lease_ahead(store.log_model, store.log_model(session=session), log_values)


def _trace_row(session: DebugSession, trace: TraceIn, now: datetime) -> dict:
    latency = trace.latency
    names = trace_names((span.start_time_unix_nano, span.attributes) for span in trace.spans)  # spans go in after
    return {
        "session_id": session.pk, "trace_id": trace.trace_id, "start_time": _aware(trace.start_time),
        "method": trace.method, "status_code": trace.status_code, "latency_total_ms": latency.total_ms,
        "latency_upstream_ms": latency.upstream_ms, "latency_kong_ms": latency.kong_ms,
        "route_id": trace.route_id, "service_id": trace.service_id, "consumer_id": trace.consumer_id,
        "route_name": names.get("route", ""), "service_name": names.get("service", ""), "created_at": now,
    }


def _payload_row(session: DebugSession, trace_pk: int, payload: PayloadIn, now: datetime, pk: uuid.UUID
                 ) -> dict | None:
    """The capture to store as row `pk` (from `rows.uuid4s`), keeping only what the session asked for; None when
    nothing is left."""
    is_request = payload.kind.endswith("_request")
    keep_headers = session.capture_request_headers if is_request else session.capture_response_headers
    keep_body = session.capture_request_body if is_request else session.capture_response_body
    headers = payload.headers if keep_headers else None
    body = payload.body() if keep_body else None
    url = payload.url if is_request else None
    if url is None and headers is None and body is None:
        return None
    return {
        "id": pk, "trace_id": trace_pk, "kind": payload.kind, "url": url, "headers": headers, "body": body,
        "body_size": len(body) if body is not None else 0, "created_at": now, "expires_at": now + PAYLOAD_RETENTION,
    }


def _log_row(session: DebugSession, log: LogIn, pk: uuid.UUID, *, default_trace_id: str = "") -> dict:
    return {
        "id": pk, "session_id": session.pk, "trace_id": log.trace_id or default_trace_id,
        "span_id": log.span_id or "", "time": _aware(log.time), "level": log.level, "message": log.message,
    }


def _aware(moment: datetime) -> datetime:
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)
