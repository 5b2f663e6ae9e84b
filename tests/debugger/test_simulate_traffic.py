"""`manage.py simulate_traffic`: a data plane playing realistic Kong traffic against the ingest API."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from debugger.models import PayloadCapture, RequestLog, SamplingKind, SessionStatus, Span, Trace
from devtools.simulator.dataplane import DataPlane, HttpTransport
from devtools.simulator.traffic import TrafficGenerator
from konnect_admin.models import DataPlaneToken
from tests import factories

pytestmark = pytest.mark.django_db


def simulate(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("simulate_traffic", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_simulated_traffic_fills_a_session(control_plane, org_admin, debug_session):
    out, err = simulate("--control-plane", "payments", "--requests", "12", "--seed", "3", "--finish")
    assert "Simulated 12 request(s) on payments: 12 sampled" in out
    assert "12/12 requests" in err and "[" + "#" * 30 + "]" in err
    debug_session.refresh_from_db()
    assert debug_session.status == SessionStatus.COMPLETED
    assert Trace.objects.filter(session=debug_session).count() == 12
    names = set(Span.objects.values_list("name", flat=True))
    assert {"kong", "kong.phase.access", "kong.router", "kong.phase.header_filter", "kong.phase.log"} <= names
    assert any(name.startswith("kong.access.plugin.") for name in names)
    assert "kong.upstream.ttfb" in names or "kong.balancer" in names
    for capture in PayloadCapture.objects.filter(kind="client_request"):
        headers = capture.headers.reveal()
        if "authorization" in headers:
            assert headers["authorization"] == "Bearer ****"
        assert all(part.endswith("=****") for part in headers["cookie"].split("; "))
    assert RequestLog.objects.filter(session=debug_session).exists()
    # The temporary token was revoked after the run.
    token = DataPlaneToken.objects.get(control_plane=control_plane)
    assert token.revoked_at is not None


def test_a_sampling_rule_only_takes_matching_requests(control_plane, make_session):
    posts = make_session(sampling_kind=SamplingKind.EXPRESSION, sampling_value='http.method == "POST"')
    errors = make_session(sampling_kind=SamplingKind.EXPRESSION, sampling_value="http.response.status_code >= 400")
    simulate("--control-plane", str(control_plane.pk), "--requests", "60", "--seed", "5")
    assert set(Trace.objects.filter(session=posts).values_list("method", flat=True)) == {"POST"}
    statuses = set(Trace.objects.filter(session=errors).values_list("status_code", flat=True))
    assert statuses and min(statuses) >= 400
    assert Trace.objects.filter(session=posts).count() < 60


def test_max_samples_is_honoured(control_plane, make_session):
    session = make_session(max_samples=5)
    out, _ = simulate("--control-plane", "payments", "--requests", "20")
    assert Trace.objects.filter(session=session).count() == 5
    session.refresh_from_db()
    assert session.status == SessionStatus.COMPLETED


def test_errors_are_command_errors(control_plane, org, debug_session):
    with pytest.raises(CommandError, match="No control plane"):
        simulate("--control-plane", "nope")
    factories.make_control_plane(factories.make_organization("Initech"), name="payments")
    with pytest.raises(CommandError, match="2 control planes are named 'payments'"):
        simulate("--control-plane", "payments")
    with pytest.raises(CommandError, match="is not active"):
        simulate("--control-plane", str(control_plane.pk), "--session", "0" * 8)
    with pytest.raises(CommandError, match="kdpt_"):
        simulate("--control-plane", str(control_plane.pk), "--token", "kpat_x")
    with pytest.raises(CommandError, match="between 1 and"):
        simulate("--control-plane", str(control_plane.pk), "--requests", "0")
    viewer = factories.make_role_user(org, "cp_viewer")
    with pytest.raises(CommandError, match="may not issue data-plane tokens"):
        simulate("--control-plane", str(control_plane.pk), "--actor", viewer.email)


def test_no_active_session_is_a_command_error(control_plane, org_admin):
    with pytest.raises(CommandError, match="no active debug session"):
        simulate("--control-plane", str(control_plane.pk))


def test_generated_traffic_is_realistic_and_reproducible():
    first = [TrafficGenerator(seed=1).request() for _ in range(1)][0]
    again = TrafficGenerator(seed=1).request()
    assert (first.endpoint, first.status, first.path) == (again.endpoint, again.status, again.path)
    generator = TrafficGenerator(seed=2)
    requests = [generator.request() for _ in range(200)]
    assert {r.status for r in requests} >= {200, 201, 429, 502}
    short_circuited = [r for r in requests if r.status in (401, 429)]
    assert all("upstream_request" not in r.payloads and r.upstream_ms is None for r in short_circuited)
    binary = [r for r in requests if r.endpoint.route == "catalog-thumbnail" and r.status == 200]
    assert binary and binary[0].payloads["client_response"]["body"].startswith(b"\x89PNG")
    for request in requests:
        root = request.spans[0]
        assert root["name"] == "kong"
        for span in request.spans[1:]:
            assert root["start_time_unix_nano"] <= span["start_time_unix_nano"] <= span["end_time_unix_nano"]


def test_over_real_http(live_server, control_plane, org_admin, make_session):
    from konnect_admin import tokens

    session = make_session()
    _token, text = tokens.data_plane_token_create(actor=org_admin, control_plane=control_plane, name="live")
    report = DataPlane(HttpTransport(live_server.url, text), region="us", seed=9).run(requests=5, finish=True)
    assert report.sampled == {str(session.pk): 5} and report.finished == [str(session.pk)]
    assert Trace.objects.filter(session=session).count() == 5


def test_the_url_option_uses_real_http(live_server, control_plane, org_admin, debug_session):
    out, _ = simulate("--control-plane", "payments", "--requests", "3", "--url", live_server.url)
    assert "3 sampled" in out
    assert Trace.objects.filter(session=debug_session).count() == 3
