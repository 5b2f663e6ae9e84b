"""Writes of the Debugger made by people: create, cancel and delete debug sessions; crypto-shredding.

Ingest by data planes lives in `debugger.ingest`, the retention purge in `debugger.retention`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from debugger.models import (
    ACTIVE_STATUSES,
    DEFAULT_MAX_SAMPLES,
    MAX_DURATION_SECONDS,
    MAX_SAMPLES_LIMIT,
    MIN_DURATION_SECONDS,
    DebugSession,
    SamplingKind,
    SessionStatus,
)
from debugger.sampling import check_rule
from encryption_keys.lifecycle.shred import shred_data_keys
from encryption_keys.models import DataKey, Purpose
from konnect_admin.models import ControlPlane, User
from konnect_admin.permissions import Action, require
from konnect_admin.services import audit_record

SESSION_PURPOSES = (Purpose.DEBUGGER_PAYLOAD, Purpose.DEBUGGER_LOG)


@transaction.atomic
def session_create(
    *,
    actor: User,
    control_plane: ControlPlane,
    duration_seconds: int,
    name: str = "",
    sampling_kind: str = SamplingKind.NONE,
    sampling_value: str = "",
    max_samples: int = DEFAULT_MAX_SAMPLES,
    capture_logs: bool = True,
    capture_request_headers: bool = True,
    capture_request_body: bool = True,
    capture_response_headers: bool = True,
    capture_response_body: bool = True,
) -> DebugSession:
    """A pending session; it starts when a data plane of the control plane picks it up."""
    require(actor, Action.DEBUG_SESSION_CREATE, control_plane)
    if not MIN_DURATION_SECONDS <= duration_seconds <= MAX_DURATION_SECONDS:
        raise ValueError(f"duration must be {MIN_DURATION_SECONDS} s to {MAX_DURATION_SECONDS // 60} min")
    if not 1 <= max_samples <= MAX_SAMPLES_LIMIT:
        raise ValueError(f"max samples must be 1 to {MAX_SAMPLES_LIMIT}")
    now = timezone.now()
    session = DebugSession.objects.create(
        control_plane=control_plane,
        name=name,
        created_by=actor,
        sampling_kind=sampling_kind,
        sampling_value=check_rule(sampling_kind, sampling_value),
        duration_seconds=duration_seconds,
        max_samples=max_samples,
        capture_logs=capture_logs,
        capture_request_headers=capture_request_headers,
        capture_request_body=capture_request_body,
        capture_response_headers=capture_response_headers,
        capture_response_body=capture_response_body,
        created_at=now,
        ends_at=now + timedelta(seconds=duration_seconds),
        retain_until=now + timedelta(days=control_plane.organization.retention_days),
    )
    audit_record(
        actor=actor, organization=control_plane.organization, action="debug_session.created", target=session,
        details={"control_plane": str(control_plane.pk), "sampling": session.sampling_kind,
                 "duration_seconds": duration_seconds, "max_samples": max_samples},
    )
    return session


@transaction.atomic
def session_cancel(*, actor: User, session: DebugSession) -> DebugSession:
    """Stop sampling now; what was captured stays readable."""
    require(actor, Action.DEBUG_SESSION_CREATE, session.control_plane)
    session = DebugSession.objects.select_for_update().get(pk=session.pk)
    if session.status not in ACTIVE_STATUSES:
        return session
    session.status = SessionStatus.CANCELLED
    session.ended_at = timezone.now()
    session.save(update_fields=["status", "ended_at"])
    audit_record(actor=actor, organization=session.organization, action="debug_session.cancelled", target=session)
    return session


@transaction.atomic
def session_delete(*, actor: User, session: DebugSession) -> int:
    """Crypto-shred the session's data keys, then delete it with its traces, payloads and logs.

    Returns the number of data keys shredded.
    """
    require(actor, Action.DEBUG_SESSION_CREATE, session.control_plane)
    shredded = session_data_keys_shred(sessions=[session], actor=actor)
    audit_record(
        actor=actor, organization=session.organization, action="debug_session.deleted", target=session,
        details={"control_plane": str(session.control_plane_id), "data_keys_shredded": shredded,
                 "traces": session.traces.count()},
    )
    session.delete()
    return shredded


def session_data_keys_shred(*, sessions: Iterable[DebugSession], purposes: Iterable[str] = SESSION_PURPOSES,
                            actor: User | None = None, reason: str = "debug session deleted") -> int:
    """Destroy the wrapped data keys of these sessions (crypto-shredding) and drop them from every cache.

    Whatever they encrypted can never be decrypted again, wherever copies of the ciphertext live.
    """
    scopes = Q()
    for session in sessions:
        scopes |= Q(organization_id=session.control_plane.organization_id, scope_ref=session.scope_ref)
    if not scopes:
        return 0
    return shred_data_keys(queryset=DataKey.objects.filter(scopes, purpose__in=list(purposes)), actor=actor,
                           reason=reason)