"""Writes made by data planes: start sessions, store traces with spans, payload captures and logs.

Each call writes in one transaction: if any value cannot be encrypted (no data key: KMS down, key
disabled), `EncryptionUnavailable` propagates and nothing of the request is stored — no partial trace.
What a session did not ask to capture is dropped here, whatever the data plane sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Count, F
from django.http import Http404
from django.utils import timezone

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
        .annotate(trace_count=Count("traces"))
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
    count = getattr(session, "trace_count", None)
    if count is None:
        count = session.traces.count()
    return max(session.max_samples - count, 0)


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
    sessions_expire(control_plane=control_plane)
    with transaction.atomic():
        session = _open_session(control_plane, session_id, late_data=False)
        result = IngestResult(session=session)
        known = set(Trace.objects.filter(session=session, trace_id__in=[t.trace_id for t in traces])
                    .values_list("trace_id", flat=True))
        fresh = []
        for trace in traces:
            if trace.trace_id in known:
                result.duplicates += 1
                continue
            known.add(trace.trace_id)
            fresh.append(trace)
        room = remaining_samples(session)
        fresh, result.dropped = fresh[:room], max(len(fresh) - room, 0)
        rows = Trace.objects.bulk_create([_trace_row(session, trace) for trace in fresh])
        spans, payloads, logs = [], [], []
        for row, trace in zip(rows, fresh, strict=True):
            for span in trace.spans:
                attributes, dropped = span.safe_attributes()
                result.dropped_attributes += dropped
                spans.append(Span(trace=row, span_id=span.span_id, parent_span_id=span.parent_span_id or "",
                                  name=span.name, start_ns=span.start_time_unix_nano,
                                  end_ns=span.end_time_unix_nano, attributes=attributes))
            payloads += [p for p in (_payload_row(store, session, row, payload) for payload in trace.payloads) if p]
            logs += [_log_row(store, session, log, default_trace_id=trace.trace_id) for log in trace.logs]
        Span.objects.bulk_create(spans)
        _store_captures(store, session, payloads, logs)
        result.accepted = len(rows)
        if room - len(rows) <= 0:
            session.status, session.ended_at = SessionStatus.COMPLETED, timezone.now()
            session.save(update_fields=["status", "ended_at"])
    return result


def payloads_ingest(*, control_plane: ControlPlane, session_id, payloads: list[TracePayloadIn],
                    store: CaptureStore = ENCRYPTED_STORE) -> IngestResult:
    sessions_expire(control_plane=control_plane)
    with transaction.atomic():
        session = _open_session(control_plane, session_id, late_data=True)
        traces = {t.trace_id: t for t in Trace.objects.filter(
            session=session, trace_id__in={p.trace_id for p in payloads})}
        unknown = [index for index, payload in enumerate(payloads) if payload.trace_id not in traces]
        if unknown:
            raise UnknownTraces(unknown)
        stored = set(store.payload_model.objects.filter(trace__in=traces.values()).values_list("trace__trace_id", "kind"))
        result, rows = IngestResult(session=session), []
        for payload in payloads:
            if (payload.trace_id, payload.kind) in stored:
                result.duplicates += 1
                continue
            stored.add((payload.trace_id, payload.kind))
            row = _payload_row(store, session, traces[payload.trace_id], payload)
            if row is None:
                result.dropped += 1
            else:
                rows.append(row)
        _store_captures(store, session, rows, [])
        result.accepted = len(rows)
    return result


def logs_ingest(*, control_plane: ControlPlane, session_id, logs: list[LogIn],
                store: CaptureStore = ENCRYPTED_STORE) -> IngestResult:
    sessions_expire(control_plane=control_plane)
    with transaction.atomic():
        session = _open_session(control_plane, session_id, late_data=True)
        result = IngestResult(session=session)
        if not session.capture_logs:
            result.dropped = len(logs)
            return result
        _store_captures(store, session, [], [_log_row(store, session, log) for log in logs])
        result.accepted = len(logs)
    return result


def _store_captures(store: CaptureStore, session: DebugSession, payloads: list, logs: list) -> None:
    """Seal and insert; raises EncryptionUnavailable (rolling the whole request back) without a data key."""
    if payloads:
        store.payload_model.objects.bulk_create(payloads)
    if logs and session.capture_logs:
        store.log_model.objects.bulk_create(logs)


def _trace_row(session: DebugSession, trace: TraceIn) -> Trace:
    return Trace(
        session=session, trace_id=trace.trace_id, start_time=_aware(trace.start_time), method=trace.method,
        status_code=trace.status_code, latency_total_ms=trace.latency.total_ms,
        latency_upstream_ms=trace.latency.upstream_ms, latency_kong_ms=trace.latency.kong_ms,
        route_id=trace.route_id, service_id=trace.service_id, consumer_id=trace.consumer_id,
    )


def _payload_row(store: CaptureStore, session: DebugSession, trace: Trace, payload: PayloadIn):
    """The capture to store, keeping only what the session asked for; None when nothing is left."""
    is_request = payload.kind.endswith("_request")
    keep_headers = session.capture_request_headers if is_request else session.capture_response_headers
    keep_body = session.capture_request_body if is_request else session.capture_response_body
    headers = payload.headers if keep_headers else None
    body = payload.body() if keep_body else None
    url = payload.url if is_request else None
    if url is None and headers is None and body is None:
        return None
    trace.session = session
    now = timezone.now()
    return store.payload_model(
        trace=trace, kind=payload.kind, url=url, headers=headers, body=body,
        body_size=len(body) if body is not None else 0, created_at=now, expires_at=now + PAYLOAD_RETENTION,
    )


def _log_row(store: CaptureStore, session: DebugSession, log: LogIn, *, default_trace_id: str = ""):
    return store.log_model(
        session=session, trace_id=log.trace_id or default_trace_id, span_id=log.span_id or "",
        time=_aware(log.time), level=log.level, message=log.message,
    )


def _aware(moment: datetime) -> datetime:
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)
