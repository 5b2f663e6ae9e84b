from datetime import timedelta

import pytest
from django.utils import timezone

from debugger.models import DebugSession, PayloadCapture, RequestLog, SessionStatus, Trace
from devtools.demo import DEMO_STEPS, DemoData
from devtools.demo.debugger import debugger_demo_step
from encryption_keys.keyring import EncryptionScope
from konnect_admin.navigation import CONTROL_PLANE_SECTIONS

pytestmark = pytest.mark.django_db


def test_encryption_scope_is_per_session_and_purpose(debug_session, ingest):
    ingest(1)
    capture, log = PayloadCapture.objects.first(), RequestLog.objects.first()
    cp = debug_session.control_plane
    scope_ref = f"{cp.pk}/{debug_session.pk}"  # the control plane is part of the scope: permissions are per CP
    assert capture.encryption_scope() == EncryptionScope(cp.organization_id, "us", "debugger.payload", scope_ref)
    assert log.encryption_scope() == EncryptionScope(cp.organization_id, "us", "debugger.log", scope_ref)


def test_a_session_reparented_in_memory_has_the_new_scope_at_once(debug_session, other_control_plane, control_plane):
    """The scope a session instance built is reused only while its parents are the same: moved to another control
    plane (here of another organization), the very same instance answers with the new scope."""
    payloads = debug_session.scope("debugger.payload")
    assert debug_session.scope("debugger.payload") is payloads
    assert debug_session.scope("debugger.log").purpose == "debugger.log"
    debug_session.control_plane = other_control_plane
    moved = debug_session.scope("debugger.payload")
    assert moved == EncryptionScope(other_control_plane.organization_id, other_control_plane.region, "debugger.payload",
                                    f"{other_control_plane.pk}/{debug_session.pk}")
    assert moved != payloads
    debug_session.control_plane = control_plane
    assert debug_session.scope("debugger.payload") == payloads


def test_retention_follows_the_organization(org, make_session):
    org.retention_days = 7
    org.save()
    session = make_session()
    assert session.retain_until - session.created_at == timedelta(days=7)


def test_display_status_times_out_an_overdue_session(debug_session):
    assert debug_session.display_status == SessionStatus.PENDING
    debug_session.ends_at = timezone.now() - timedelta(seconds=1)
    assert debug_session.display_status == SessionStatus.TIMED_OUT and not debug_session.is_active


def test_the_app_registers_its_section_and_the_demo_lists_its_step():
    assert debugger_demo_step in DEMO_STEPS
    assert any(provider.__module__ == "debugger.navigation" for provider in CONTROL_PLANE_SECTIONS)


def test_demo_step_fills_two_sessions_through_the_ingest_api(control_plane, org_admin):
    demo = DemoData(control_planes={"payments": control_plane}, users={"admin@acme.test": org_admin})
    messages = []
    debugger_demo_step(demo, messages.append)
    sessions = list(DebugSession.objects.order_by("created_at"))
    assert [s.name for s in sessions] == ["Writes and errors", "All traffic"]
    assert [s.status for s in sessions] == [SessionStatus.COMPLETED, SessionStatus.IN_PROGRESS]
    for session in sessions:
        assert Trace.objects.filter(session=session).exists()
        assert PayloadCapture.objects.filter(trace__session=session).exists()
        assert RequestLog.objects.filter(session=session).exists()
    assert "2 debug sessions on payments" in messages[0]
