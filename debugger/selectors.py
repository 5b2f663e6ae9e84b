"""Reads of the Debugger, scoped to the caller's organization and roles.

Encrypted values are revealed in batches (`keyring.reveal_many`: one KMS Decrypt per distinct data key,
not per row); a value that cannot be decrypted comes back as a typed error for the page to explain.

Only who may read plaintext (`Action.DEBUG_PAYLOAD_READ` on the session's control plane) gets anything
revealed: for everyone else the revealing selectors return SEALED placeholders without touching a data
key, so not even a KMS Decrypt happens on their behalf.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from debugger.attributes import entity_names
from debugger.ingest import ENCRYPTED_STORE, CaptureStore
from debugger.models import DebugSession, PayloadCapture, PayloadKind, RequestLog, Span, Trace
from debugger.panels import path_preview
from debugger.services import SESSION_PURPOSES
from encryption_keys import keyring
from encryption_keys.envelope import DecryptionError
from encryption_keys.fields import SealedValue
from encryption_keys.models import DataKey
from konnect_admin.models import ControlPlane, Organization, User
from konnect_admin.permissions import Action, can
from konnect_admin.selectors import control_plane_get

PAYLOAD_ORDER = [PayloadKind.CLIENT_REQUEST, PayloadKind.UPSTREAM_REQUEST, PayloadKind.UPSTREAM_RESPONSE,
                 PayloadKind.CLIENT_RESPONSE]


@dataclass(frozen=True, slots=True)
class TraceFilters:
    """What the traces table can filter on: unencrypted metadata only."""

    status: str = ""  # "503" or a class such as "5xx"
    method: str = ""
    latency_min_ms: float | None = None
    latency_max_ms: float | None = None
    route_id: str = ""
    service_id: str = ""

    @property
    def active(self) -> bool:
        return any((self.status, self.method, self.latency_min_ms is not None, self.latency_max_ms is not None,
                    self.route_id, self.service_id))


@dataclass(frozen=True, slots=True)
class TraceRow:
    """A line of the traces table: metadata, the revealed request path (or why not), how many payloads."""

    trace: Trace
    path: str = ""
    error: object = None
    payloads: int = 0
    sealed: bool = False  # the caller's role cannot read payloads
    start: datetime | None = None  # the trace's start in the reader's time zone (looked up once per page)

    # What the table cell shows, formatted here once rather than by template filters in each of 50 rows.
    @property
    def start_iso(self) -> str:
        return self.start.isoformat()

    @property
    def start_clock(self) -> str:
        return self.start.strftime("%H:%M:%S.%f")[:12]

    @property
    def status_class(self) -> str:
        return f"{str(self.trace.status_code)[:1]}xx"

    @property
    def latency_total(self) -> str:
        return _ms(self.trace.latency_total_ms)

    @property
    def latency_kong(self) -> str:
        return _ms(self.trace.latency_kong_ms)

    @property
    def latency_upstream(self) -> str:
        return _ms(self.trace.latency_upstream_ms)


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


SEALED = None  # what a revealing selector returns, in place of a value, to a caller who may not read it


def payloads_readable(*, user: User, control_plane: ControlPlane) -> bool:
    """May `user` read decrypted payloads, request logs and blobs of `control_plane` (DESIGN.md §2)?"""
    return can(user, Action.DEBUG_PAYLOAD_READ, control_plane)


def reveal_all(values: list) -> list[keyring.Revealed]:
    """Reveal a batch; sealed values go through `reveal_many`, plain values (the benchmark's twins) pass through."""
    results = [keyring.Revealed(value=bytes(v) if isinstance(v, memoryview) else v) for v in values]
    sealed = [index for index, value in enumerate(values) if isinstance(value, SealedValue)]
    for index, revealed in zip(sealed, keyring.reveal_many(values[i] for i in sealed), strict=True):
        results[index] = revealed
    return results


# --- sessions ----------------------------------------------------------------------------------------------


def debugger_control_plane(*, user: User, organization: Organization, pk,
                           action: Action = Action.DEBUG_SESSION_VIEW) -> ControlPlane:
    """404 for another organization's (or an invisible) control plane, 403 without the right."""
    return control_plane_get(user=user, organization=organization, pk=pk, action=action)


def session_list(*, control_plane: ControlPlane) -> QuerySet[DebugSession]:
    return (
        DebugSession.objects.filter(control_plane=control_plane)
        .select_related("created_by", "control_plane")
        .annotate(trace_count=Count("traces"))
        .order_by("-created_at")
    )


def session_get(*, user: User, organization: Organization, control_plane_pk, pk,
                action: Action = Action.DEBUG_SESSION_VIEW) -> DebugSession:
    control_plane = debugger_control_plane(user=user, organization=organization, pk=control_plane_pk, action=action)
    session = (
        DebugSession.objects.select_related("created_by")
        .annotate(trace_count=Count("traces")).filter(pk=pk, control_plane=control_plane).first()
    )
    if session is None:
        raise Http404("No such debug session.")
    session.control_plane = control_plane  # already read, with its organization
    return session


def session_progress(*, session: DebugSession, store: CaptureStore = ENCRYPTED_STORE) -> str:
    """What the session page's live region shows changes with: the status as it is now, the traces, the payloads.

    Counts only: nothing is decrypted, no data key is touched. `session` comes from `session_get` (its count)."""
    payloads = store.payload_model.objects.filter(trace__session=session).count()
    return f"{session.display_status}:{session.trace_count}:{payloads}"


# --- traces ------------------------------------------------------------------------------------------------


def trace_list(*, session: DebugSession, filters: TraceFilters) -> QuerySet[Trace]:
    traces = Trace.objects.filter(session=session)
    if filters.status.endswith("xx"):
        floor = int(filters.status[0]) * 100
        traces = traces.filter(status_code__gte=floor, status_code__lt=floor + 100)
    elif filters.status:
        traces = traces.filter(status_code=int(filters.status))
    if filters.method:
        traces = traces.filter(method=filters.method)
    if filters.latency_min_ms is not None:
        traces = traces.filter(latency_total_ms__gte=filters.latency_min_ms)
    if filters.latency_max_ms is not None:
        traces = traces.filter(latency_total_ms__lte=filters.latency_max_ms)
    if filters.route_id:
        traces = traces.filter(route_id=filters.route_id)
    if filters.service_id:
        traces = traces.filter(service_id=filters.service_id)
    return traces.order_by("-start_time", "-id")


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class TracePage:
    """One page of traces, newest first, with the cursors of the pages around it (None: there is none)."""

    traces: list
    newer: str | None = None  # `?before=` of the previous (newer) page
    older: str | None = None  # `?after=` of the next (older) page


def trace_cursor(trace: Trace) -> str:
    """`<start time in µs since the epoch>.<id>`: the position of a trace in (start_time, id) order."""
    return f"{(trace.start_time - EPOCH) // MICROSECOND}.{trace.pk}"


def _parse_cursor(cursor: str) -> tuple[datetime, int] | None:
    micros, _, pk = (cursor or "").partition(".")
    try:
        return EPOCH + int(micros) * MICROSECOND, int(pk)
    except (ValueError, OverflowError):
        return None


def trace_page(traces: QuerySet[Trace], *, after: str = "", before: str = "", per_page: int) -> TracePage:
    """Keyset pagination on (start_time, id), newest first: each page is one index range scan of at most
    `per_page + 1` rows, however deep it is and however many traces the session has (no OFFSET, no COUNT).

    `after` pages towards older traces, `before` towards newer ones; an unreadable cursor reads the first page,
    and so does a `before` with fewer than a page of newer traces left."""
    position = _parse_cursor(after) or _parse_cursor(before)
    if position is None:
        rows = list(traces[:per_page + 1])
        return TracePage(rows[:per_page], older=trace_cursor(rows[per_page - 1]) if len(rows) > per_page else None)
    start, pk = position
    if _parse_cursor(after):
        older = traces.filter(Q(start_time__lt=start) | Q(start_time=start, id__lt=pk), start_time__lte=start)
        rows = list(older[:per_page + 1])
        return TracePage(rows[:per_page], newer=trace_cursor(rows[0]) if rows else None,
                         older=trace_cursor(rows[per_page - 1]) if len(rows) > per_page else None)
    newer = traces.filter(Q(start_time__gt=start) | Q(start_time=start, id__gt=pk), start_time__gte=start)
    rows = list(newer.order_by("start_time", "id")[:per_page + 1])
    if len(rows) <= per_page:
        return trace_page(traces, per_page=per_page)
    rows = rows[:per_page][::-1]
    return TracePage(rows, newer=trace_cursor(rows[0]), older=trace_cursor(rows[-1]))


def trace_rows(traces, *, user: User, control_plane: ControlPlane, session: DebugSession | None = None,
               store: CaptureStore = ENCRYPTED_STORE) -> list[TraceRow]:
    """The page's traces with the path of their (encrypted) client-request URL, revealed in one batch.

    For a caller who may not read payloads, nothing is revealed: each row is `sealed`. `session`, when the
    caller has it (with its control plane), saves building a session and control plane per row."""
    traces = list(traces)
    for trace in traces:
        if session is not None and trace.session_id == session.pk:
            trace.session = session
        elif not Trace.session.is_cached(trace):
            trace.session = DebugSession(pk=trace.session_id, control_plane=control_plane)
    pks = [trace.pk for trace in traces]
    payloads = dict(store.payload_model.objects.filter(trace_id__in=pks).values("trace").annotate(n=Count("id"))
                    .values_list("trace", "n"))
    zone = timezone.get_current_timezone()
    if not payloads_readable(user=user, control_plane=control_plane):
        return [TraceRow(trace=trace, payloads=payloads.get(trace.pk, 0), sealed=True,
                         start=trace.start_time.astimezone(zone)) for trace in traces]
    by_pk = {trace.pk: trace for trace in traces}
    captures = list(store.payload_model.objects.filter(trace_id__in=pks, kind=PayloadKind.CLIENT_REQUEST,
                                                       url__isnull=False).only("id", "trace_id", "url"))
    for capture in captures:  # what encryption_scope() reads: the page's own trace, session and control plane
        capture.trace = by_pk[capture.trace_id]
    revealed = dict(zip((c.trace_id for c in captures), reveal_all([c.url for c in captures]), strict=True))
    rows = []
    for trace in traces:
        result = revealed.get(trace.pk)
        rows.append(TraceRow(
            trace=trace,
            path=path_preview(result.value) if result is not None and result.ok else "",
            error=result.error if result is not None else None,
            payloads=payloads.get(trace.pk, 0),
            start=trace.start_time.astimezone(zone),
        ))
    return rows


def trace_get(*, session: DebugSession, trace_id: str) -> Trace:
    trace = Trace.objects.filter(session=session, trace_id=trace_id).first()
    if trace is None:
        raise Http404("No such trace in this session.")
    trace.session = session
    return trace


def trace_names(*, trace: Trace, spans: list[Span]) -> dict[str, str]:
    """Route and service names as stored with the trace; the consumer's, which only the trace page shows, from
    its spans (in their (start, id) order), which that page reads anyway for the waterfall."""
    consumer = entity_names((span.attributes for span in spans), entities=("consumer",))
    return {"route": trace.route_name, "service": trace.service_name, **consumer}


def trace_payload_kinds(*, trace: Trace, store: CaptureStore = ENCRYPTED_STORE) -> list[dict]:
    """Which payloads a trace has (metadata only, nothing decrypted), in request → response order."""
    stored = dict(store.payload_model.objects.filter(trace=trace).values_list("kind", "body_size"))
    return [
        {"kind": kind.value, "label": kind.label, "body_size": stored[kind.value]}
        for kind in PAYLOAD_ORDER if kind.value in stored
    ]


def trace_payload_errors(*, trace: Trace, user: User,
                         store: CaptureStore = ENCRYPTED_STORE) -> tuple[dict[str, object], object] | None:
    """Why each payload of the trace cannot be read (kind → DecryptionError; a readable payload is absent) and
    the data key of the first failing one, for the trace page to show one card when they all fail alike.
    SEALED for who may not read payloads.

    One batch: the smallest sealed value of each capture (URL, else headers, else body), so one KMS Decrypt
    per distinct data key — usually one — which the panels then find cached. Only errors leave this function,
    never a revealed value."""
    if not payloads_readable(user=user, control_plane=trace.session.control_plane):
        return SEALED
    captures = list(store.payload_model.objects.filter(trace=trace).defer("body"))
    probes = []
    for capture in captures:
        capture.trace = trace
        value = capture.url if capture.url is not None else capture.headers
        probes.append(value if value is not None else capture.body)
    errors, data_key_id = {}, None
    for capture, probe, result in zip(captures, probes, reveal_all(probes), strict=True):
        if result.error is not None:
            errors[capture.kind] = result.error
            if data_key_id is None and isinstance(probe, SealedValue):
                with contextlib.suppress(DecryptionError):
                    data_key_id = probe.data_key_id
    return errors, data_key_id


def payload_get(*, trace: Trace, kind: str, store: CaptureStore = ENCRYPTED_STORE):
    capture = store.payload_model.objects.filter(trace=trace, kind=kind).first()
    if capture is None:
        raise Http404("This trace has no such payload.")
    capture.trace = trace
    return capture


def payload_revealed(*, user: User, capture) -> list[keyring.Revealed] | None:
    """URL, headers and body of a capture revealed in one batch, or SEALED for who may not read them."""
    if not payloads_readable(user=user, control_plane=capture.trace.session.control_plane):
        return SEALED
    return reveal_all([capture.url, capture.headers, capture.body])


# --- logs --------------------------------------------------------------------------------------------------


def log_list(*, session: DebugSession, level: str = "", span_id: str = "", trace_id: str = "",
             store: CaptureStore = ENCRYPTED_STORE) -> QuerySet[RequestLog]:
    logs = store.log_model.objects.filter(session=session).select_related("session__control_plane")  # the scope
    if level:
        logs = logs.filter(level=level)
    if span_id:
        logs = logs.filter(span_id=span_id)
    if trace_id:
        logs = logs.filter(trace_id=trace_id)
    return logs.order_by("-time", "-id")  # newest first, as the traces


def logs_revealed(logs, *, user: User, control_plane: ControlPlane) -> list[tuple[object, keyring.Revealed | None]]:
    """Each log row with its message revealed (all rows of the page in one batch), or SEALED for who may not."""
    logs = list(logs)
    if not payloads_readable(user=user, control_plane=control_plane):
        return [(log, SEALED) for log in logs]
    return list(zip(logs, reveal_all([log.message for log in logs]), strict=True))


@dataclass(slots=True)
class LogGroup:
    """Consecutive log lines of a page that cannot be read for one reason: one row of the table, not one each."""

    error: object
    logs: list
    card: object = None  # the error card's facts for the reader (`error_reporting.error_card`), set by the view

    @property
    def count(self) -> int:
        return len(self.logs)

    @property
    def newest(self):
        return self.logs[0].time

    @property
    def oldest(self):
        return self.logs[-1].time


def log_rows(revealed: list[tuple[object, keyring.Revealed | None]]) -> list[tuple[object, object]]:
    """The page's `(log, message)` pairs with each run of lines unreadable for the same code folded into one
    `(LogGroup, None)` row: a disabled key makes a page of 100 identical "Key disabled" lines otherwise."""
    rows: list[tuple[object, object]] = []
    for log, message in revealed:
        error = message.error if message is not None and not message.ok else None
        if error is None:
            rows.append((log, message))
            continue
        last = rows[-1][0] if rows else None
        if isinstance(last, LogGroup) and last.error.code == error.code:
            last.logs.append(log)
        else:
            rows.append((LogGroup(error=error, logs=[log]), None))
    return rows


def session_traces_by_id(*, session: DebugSession, trace_ids) -> set[str]:
    return set(Trace.objects.filter(session=session, trace_id__in=set(trace_ids)).values_list("trace_id", flat=True))


def session_footprint(*, session: DebugSession) -> dict:
    """What deleting the session destroys: counts only."""
    return {
        "traces": Trace.objects.filter(session=session).count(),
        "payloads": PayloadCapture.objects.filter(trace__session=session).count(),
        "logs": RequestLog.objects.filter(session=session).count(),
        "data_keys": DataKey.objects.filter(
            organization_id=session.control_plane.organization_id, purpose__in=SESSION_PURPOSES,
            scope_ref=session.scope_ref, shredded_at__isnull=True,
        ).count(),
    }
