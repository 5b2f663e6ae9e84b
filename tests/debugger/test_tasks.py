"""The scheduled session expiry: a session past its end is timed out though no data plane asks for sessions."""

from debugger.models import DebugSession, SessionStatus
from debugger.tasks import expire_sessions


def test_the_expiry_task_times_out_a_session_past_its_end(debug_session, make_session):
    running = make_session(name="still running")
    DebugSession.objects.filter(pk=debug_session.pk).update(ends_at=debug_session.created_at)

    result = expire_sessions.enqueue()  # tests.settings: the immediate backend runs it here

    assert result.return_value == 1
    debug_session.refresh_from_db()
    running.refresh_from_db()
    assert debug_session.status == SessionStatus.TIMED_OUT and debug_session.ended_at == debug_session.ends_at
    assert running.status != SessionStatus.TIMED_OUT
