"""The Debugger's demo step: two debug sessions on Acme's "payments", filled by the traffic simulator."""

from debugger import services
from debugger.models import SamplingKind
from devtools.simulator.runner import simulate_traffic


def debugger_demo_step(demo, log) -> None:
    control_plane = demo.control_planes.get("payments")
    admin = demo.users.get("admin@acme.test")
    if control_plane is None or admin is None:
        return
    creator = demo.users.get("debugger@acme.test", admin)
    writes = services.session_create(
        actor=creator, control_plane=control_plane, name="Writes and errors", duration_seconds=1800,
        sampling_kind=SamplingKind.EXPRESSION,
        sampling_value='http.method == "POST" || http.response.status_code >= 400', max_samples=25,
    )
    # The data plane picks up the first session, samples, and finishes it …
    first = simulate_traffic(control_plane=control_plane, requests=40, session_id=str(writes.pk), seed=7,
                             finish=True, actor=admin)
    everything = services.session_create(
        actor=admin, control_plane=control_plane, name="All traffic", duration_seconds=1800, max_samples=30,
    )
    # … then a second one, left running.
    second = simulate_traffic(control_plane=control_plane, requests=20, session_id=str(everything.pk), seed=11,
                              actor=admin)
    log(f"Debugger: 2 debug sessions on payments ({first.total_sampled} + {second.total_sampled} traces, "
        "payloads and request logs encrypted).")
