"""The Debugger's entries in the platform's navigation extension points."""

from debugger.selectors import session_list
from konnect_admin.permissions import Action, can

RECENT_SESSIONS = 5


def debugger_section(request, control_plane):
    """The "Debugger" card of the control plane page: recent sessions and a way to start one."""
    if not can(request.user, Action.DEBUG_SESSION_VIEW, control_plane):
        return None
    sessions = session_list(control_plane=control_plane)
    return {
        "template": "debugger/control_plane_section.html#debugger",
        "title": "Debugger",
        "control_plane": control_plane,
        "sessions": list(sessions[:RECENT_SESSIONS]),
        "session_count": sessions.count(),
        "can_create": can(request.user, Action.DEBUG_SESSION_CREATE, control_plane),
    }
