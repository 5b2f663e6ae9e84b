"""Run a simulated data plane for a control plane, with a temporary data-plane token when none is given."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import PermissionDenied

from devtools.simulator.dataplane import (
    DataPlane,
    HttpTransport,
    InProcessTransport,
    SimulationError,
    SimulationReport,
)
from konnect_admin import tokens
from konnect_admin.models import ControlPlane, Role, User

TEMPORARY_TOKEN_NAME = "simulate_traffic (temporary)"  # noqa: S105 - a label, not a secret


def default_actor(control_plane: ControlPlane) -> User:
    """An Organization Admin of the control plane's organization, to issue the temporary token."""
    actor = (
        User.objects.filter(is_active=True, teams__organization=control_plane.organization_id,
                            teams__predefined_role=Role.ORG_ADMIN)
        .order_by("date_joined", "pk").first()
    )
    if actor is None:
        raise SimulationError(f"{control_plane.organization} has no Organization Admin to issue a data-plane "
                              "token; pass a token or an actor")
    return actor


def in_process_host() -> str:
    allowed = settings.ALLOWED_HOSTS
    if "testserver" in allowed or "*" in allowed:
        return "testserver"
    if not allowed:
        raise SimulationError("ALLOWED_HOSTS is empty: give the server's URL to simulate over HTTP")
    return allowed[0].lstrip(".")


def simulate_traffic(
    *,
    control_plane: ControlPlane,
    requests: int,
    session_id: str | None = None,
    token: str | None = None,
    url: str | None = None,
    actor: User | None = None,
    seed: int | None = None,
    finish: bool = False,
    progress: Callable[[int, int, int], None] = lambda done, total, sampled: None,
) -> SimulationReport:
    """Play `requests` gateway requests; each active session (or the one given) samples what its rule matches."""
    temporary = None
    if token is None:
        actor = actor or default_actor(control_plane)
        try:
            temporary, token = tokens.data_plane_token_create(
                actor=actor, control_plane=control_plane, name=TEMPORARY_TOKEN_NAME
            )
        except PermissionDenied:
            raise SimulationError(f"{actor.email} may not issue data-plane tokens for {control_plane}") from None
    try:
        transport = HttpTransport(url, token) if url else InProcessTransport(token, host=in_process_host())
        data_plane = DataPlane(transport, region=control_plane.region, seed=seed)
        return data_plane.run(requests=requests, session_id=session_id, finish=finish, progress=progress)
    finally:
        if temporary is not None:
            tokens.data_plane_token_revoke(actor=temporary.created_by, token=temporary)
