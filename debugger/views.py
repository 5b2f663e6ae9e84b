"""Debugger pages: sessions, traces with their span waterfall, payload panels (htmx), request logs.

Every page here may show decrypted data (or would, to a role that can read it), so none may be stored
by a browser or a proxy: `never_cache` sends `Cache-Control: no-store` on each. Who may not read
payloads sees the metadata and the "encrypted" state (debugger/includes/encrypted.html).
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from debugger import selectors, services
from debugger.forms import DebugSessionForm, LogFilterForm, TraceFilterForm, trace_filter_fields
from debugger.ingest import ENCRYPTED_STORE
from debugger.models import SessionStatus
from debugger.panels import body_view
from debugger.waterfall import waterfall
from encryption_keys.envelope import DecryptionError
from encryption_keys.error_reporting import error_card
from encryption_keys.fields import SealedValue
from konnect_admin.permissions import Action, can
from konnect_admin.views.pages import paginate, render_page

logger = logging.getLogger(__name__)
TRACES_PER_PAGE = 50
LOGS_PER_PAGE = 100
MAX_AUTO_RETRIES = 3
PROGRESS_HEADER = "X-Session-Progress"  # sent by the session page's poll: the progress it shows


def _session(request, cp, pk, action=Action.DEBUG_SESSION_VIEW):
    return selectors.session_get(user=request.user, organization=request.organization, control_plane_pk=cp, pk=pk,
                                 action=action)


def _redirect(request, url):
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _session_context(request, session, tab: str) -> dict:
    return {
        "session": session,
        "control_plane": session.control_plane,
        "tab": tab,
        "can_manage": can(request.user, Action.DEBUG_SESSION_CREATE, session.control_plane),
        "can_read_payloads": selectors.payloads_readable(user=request.user, control_plane=session.control_plane),
    }


@never_cache
@require_GET
def session_list(request, cp):
    control_plane = selectors.debugger_control_plane(user=request.user, organization=request.organization, pk=cp)
    context = {
        "control_plane": control_plane,
        "page": paginate(request, selectors.session_list(control_plane=control_plane)),
        "can_create": can(request.user, Action.DEBUG_SESSION_CREATE, control_plane),
    }
    return render_page(request, "debugger/session_list.html", context, partial="sessions")


@never_cache
@require_http_methods(["GET", "POST"])
def session_create(request, cp):
    control_plane = selectors.debugger_control_plane(user=request.user, organization=request.organization, pk=cp,
                                                     action=Action.DEBUG_SESSION_CREATE)
    form = DebugSessionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        session = services.session_create(actor=request.user, control_plane=control_plane, **form.cleaned_data)
        messages.success(request, f"{session} created: it starts when a data plane picks it up.")
        return _redirect(request, reverse("debug_session_detail", args=[control_plane.pk, session.pk]))
    status = (422 if request.htmx else 400) if form.errors else 200
    context = {"form": form, "control_plane": control_plane}
    return render_page(request, "debugger/session_form.html", context, partial="form", status=status)


@never_cache
@require_GET
def session_detail(request, cp, pk, store=ENCRYPTED_STORE):
    """The traces of a session, newest first, a page at a time by cursor. While it samples, the page polls (htmx) with the progress it shows: unchanged,
    the answer is 204 No Content — counts read, nothing decrypted; changed, the table, status and facts."""
    session = _session(request, cp, pk)
    progress = selectors.session_progress(session=session, store=store)
    if request.htmx and request.headers.get(PROGRESS_HEADER) == progress:
        return HttpResponse(status=HTTPStatus.NO_CONTENT)
    form = TraceFilterForm(request.GET or None)
    if form.is_bound:
        form.is_valid()
    filters = form.filters()
    page = selectors.trace_page(selectors.trace_list(session=session, filters=filters), per_page=TRACES_PER_PAGE,
                                after=request.GET.get("after", ""), before=request.GET.get("before", ""))
    rows = selectors.trace_rows(page.traces, user=request.user, control_plane=session.control_plane,
                                session=session, store=store)
    context = {
        **_session_context(request, session, "traces"),
        "form": form,
        "filter_fields": trace_filter_fields(form),
        "filters": filters,
        "page": page,
        "rows": rows,
        "row_errors": _row_errors(request, session, rows),
        "keys_url": _keys_url(request),
        "progress": progress,
        "progress_header": PROGRESS_HEADER,
    }
    return render_page(request, "debugger/session_detail.html", context, partial="live")


@never_cache
@require_GET
def session_logs(request, cp, pk):
    session = _session(request, cp, pk)
    form = LogFilterForm(request.GET or None)
    if form.is_bound:
        form.is_valid()
    page = paginate(request, selectors.log_list(session=session, **form.filters()), per_page=LOGS_PER_PAGE)
    revealed = selectors.logs_revealed(page.object_list, user=request.user, control_plane=session.control_plane)
    rows = selectors.log_rows(revealed)
    for group, _ in rows:
        if isinstance(group, selectors.LogGroup):
            group.card = _card(request, group.error, session=session, data_key_id=_data_key_of_values(
                [group.logs[0].message]))
    context = {
        **_session_context(request, session, "logs"),
        "form": form,
        "page": page,
        "rows": rows,
        "keys_url": _keys_url(request),
        "known_traces": selectors.session_traces_by_id(session=session, trace_ids=[log.trace_id for log, _ in revealed]),
    }
    return render_page(request, "debugger/session_logs.html", context, partial="logs")


@never_cache
@require_POST
def session_cancel(request, cp, pk):
    session = _session(request, cp, pk, Action.DEBUG_SESSION_CREATE)
    session = services.session_cancel(actor=request.user, session=session)
    if session.status == SessionStatus.CANCELLED:
        messages.success(request, f"{session} cancelled; what it captured stays readable.")
    else:
        messages.info(request, f"{session} had already ended ({session.get_status_display().lower()}).")
    return _redirect(request, reverse("debug_session_detail", args=[session.control_plane_id, session.pk]))


@never_cache
@require_http_methods(["GET", "POST"])
def session_delete(request, cp, pk):
    session = _session(request, cp, pk, Action.DEBUG_SESSION_CREATE)
    if request.method == "POST":
        shredded = services.session_delete(actor=request.user, session=session)
        messages.success(request, f"{session} deleted; {shredded} data key(s) shredded first.")
        return _redirect(request, reverse("debug_session_list", args=[cp]))
    context = {**_session_context(request, session, ""), "footprint": selectors.session_footprint(session=session)}
    return render_page(request, "debugger/session_delete.html", context)


@never_cache
@require_GET
def trace_detail(request, cp, pk, trace_id):
    session = _session(request, cp, pk)
    trace = selectors.trace_get(session=session, trace_id=trace_id)
    payloads = selectors.trace_payload_kinds(trace=trace)
    spans = list(trace.spans.all())
    context = {
        **_session_context(request, session, "traces"),
        "trace": trace,
        "waterfall": waterfall(spans),
        "payloads": payloads,
        "log_count": selectors.log_list(session=session, trace_id=trace.trace_id).count(),
        "payloads_card": _shared_payload_card(request, session, trace, payloads),
        "names": selectors.trace_names(trace=trace, spans=spans),
    }
    return render_page(request, "debugger/trace_detail.html", context)


@never_cache
@require_GET
def payload_panel(request, cp, pk, trace_id, kind, store=ENCRYPTED_STORE):
    """One payload, decrypted — or a decryption-error card (200, never a 500, never ciphertext), or the
    "encrypted" state for a role that may not read payloads (nothing decrypted)."""
    session = _session(request, cp, pk)
    trace = selectors.trace_get(session=session, trace_id=trace_id)
    capture = selectors.payload_get(trace=trace, kind=kind, store=store)
    attempt = _attempt(request)
    context = {
        **_session_context(request, session, "traces"),
        "trace": trace,
        "capture": capture,
        "panel_url": reverse("debug_payload_panel", args=[cp, pk, trace_id, kind]),
        "attempt": attempt,
    }
    revealed = selectors.payload_revealed(user=request.user, capture=capture)
    if revealed is not selectors.SEALED:
        context.update(_revealed_context(request, capture, revealed, attempt=attempt))
    return render_page(request, "debugger/payload_panel.html", context, partial="panel")


def _row_errors(request, session, rows) -> list[tuple[object, int]]:
    """Each reason the page's request paths cannot be read, once, with its card for the reader and how many
    rows it hides: the table itself keeps a short badge per row."""
    errors: dict[str, list] = {}
    for row in rows:
        if row.error is not None:
            errors.setdefault(row.error.code, [row.error, 0])[1] += 1
    return [(_card(request, error, session=session), count) for error, count in errors.values()]


def _shared_payload_card(request, session, trace, payloads):
    """One error card for the trace when every payload fails for the same reason (a disabled key: four identical
    cards otherwise), with each payload's state on a line of its own; None when any payload is readable or
    they fail differently (then each panel shows its own card)."""
    if not payloads:
        return None
    outcome = selectors.trace_payload_errors(trace=trace, user=request.user)
    errors, data_key_id = outcome if outcome is not selectors.SEALED else ({}, None)
    if not errors or len(errors) < len(payloads) or len({error.code for error in errors.values()}) != 1:
        return None
    error = next(iter(errors.values()))
    logger.warning("debugger: %d payloads of trace %s unreadable: %s", len(errors), trace.trace_id, error)
    for payload in payloads:
        payload["error"] = errors[payload["kind"]]
    return _card(request, error, session=session, data_key_id=data_key_id)


def _revealed_context(request, capture, revealed, *, attempt: int) -> dict:
    """The panel's plaintext, or the decryption-error card of the first value that could not be revealed."""
    url, headers, body = revealed
    error = next((result.error for result in (url, headers, body) if result.error is not None), None)
    if error is not None:
        logger.warning("debugger: %s payload of trace %s unreadable: %s", capture.kind, capture.trace.trace_id, error)
        card = _card(request, error, session=capture.trace.session, data_key_id=_data_key_of(capture))
        return {"card": card, "auto_retry": card.retryable and attempt < MAX_AUTO_RETRIES,
                "keys_url": _keys_url(request)}
    full = request.GET.get("full") == "1"
    return {"url": url.value, "headers": _header_rows(headers.value), "full": full,
            "body": body_view(body.value, headers=headers.value, full=full)}


def _card(request, error, *, session, data_key_id=None):
    """The error card for this reader: an Organization Admin gets the key provider's remedy, anyone else whom
    to ask (never "Re-enable the key in AWS KMS" for a role that cannot)."""
    return error_card(error, organization_id=session.control_plane.organization_id,
                      manages_keys=can(request.user, Action.KEY_MANAGE, request.organization),
                      data_key_id=data_key_id)


def _keys_url(request) -> str:
    """Where an Organization Admin sees the key's status (only for those who may)."""
    if not can(request.user, Action.KEY_VIEW, request.organization):
        return ""
    try:
        return reverse("encryption_key_list")
    except NoReverseMatch:
        return ""


def _attempt(request) -> int:
    try:
        return max(0, min(int(request.GET.get("attempt", 0)), MAX_AUTO_RETRIES))
    except ValueError:
        return 0


def _data_key_of(capture):
    return _data_key_of_values([capture.url, capture.headers, capture.body])


def _data_key_of_values(values):
    for value in values:
        if isinstance(value, SealedValue):
            try:
                return value.data_key_id
            except DecryptionError:
                return None
    return None


def _header_rows(headers) -> list[tuple[str, str]] | None:
    if headers is None:
        return None
    return [(name, ", ".join(value) if isinstance(value, list) else str(value)) for name, value in headers.items()]
