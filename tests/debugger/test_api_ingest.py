"""The data-plane ingest API, over Django's HTTP stack, against the local KMS."""

import json

import pytest
from django.db import connection
from django.test import Client

from debugger.attributes import entity_names
from debugger.models import DebugSession, PayloadCapture, RequestLog, SessionStatus, Span, Trace
from devtools import local_kms
from encryption_keys.models import DataKey
from konnect_admin import tokens
from tests import factories
from tests.debugger.conftest import (
    BODY_SECRET,
    HEADER_SECRET,
    LOG_SECRET,
    QUERY_SECRET,
    fresh_reader,
    post_traces,
    trace_json,
)

pytestmark = pytest.mark.django_db
SESSIONS = "/api/us/v1/debugger/sessions"


def problem(response) -> dict:
    assert response["Content-Type"] == "application/problem+json"
    return json.loads(response.content)


def debugger_rows() -> dict:
    return {model.__name__: model.objects.count() for model in (Trace, Span, PayloadCapture, RequestLog)}


def test_requires_a_data_plane_token(client, debug_session, org_admin):
    assert client.get(SESSIONS).status_code == 401
    _token, personal = tokens.personal_access_token_create(user=org_admin, organization=debug_session.organization,
                                                           name="me")
    response = client.get(SESSIONS, HTTP_AUTHORIZATION=f"Bearer {personal}")
    assert response.status_code == 401
    assert problem(response)["status"] == 401


def test_a_revoked_token_is_refused(dp_client, dp_token, org_admin):
    token = tokens.data_plane_token_authenticate(dp_token)
    tokens.data_plane_token_revoke(actor=org_admin, token=token)
    assert dp_client.get(SESSIONS).status_code == 401


def test_fetching_sessions_starts_pending_ones_of_this_control_plane_only(dp_client, make_session, org,
                                                                         other_control_plane, other_org_admin):
    mine = make_session(name="mine")
    other_cp_same_org = factories.make_control_plane(org, name="storefront")
    make_session(cp=other_cp_same_org)
    make_session(cp=other_control_plane, actor=other_org_admin)
    response = dp_client.get(SESSIONS)
    assert response.status_code == 200
    data = response.json()["data"]
    assert [item["id"] for item in data] == [str(mine.pk)]
    assert data[0]["status"] == "in_progress" and data[0]["remaining_samples"] == 100
    assert data[0]["capture"] == {"logs": True, "request_headers": True, "request_body": True,
                                  "response_headers": True, "response_body": True}
    mine.refresh_from_db()
    assert mine.status == SessionStatus.IN_PROGRESS and mine.started_at is not None


def test_post_traces_stores_metadata_spans_and_encrypted_payloads_and_logs(dp_client, debug_session):
    trace = trace_json(status=503)
    response = post_traces(dp_client, debug_session, [trace])
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["dropped"]) == (1, 0, 0)
    assert body["dropped_attributes"] == 2  # http.url and http.client_ip never stored unencrypted
    stored = Trace.objects.get(trace_id=trace["trace_id"])
    assert (stored.session, stored.status_code, stored.method, stored.route_id) == (debug_session, 503, "POST",
                                                                                    "route-orders")
    root = Span.objects.get(trace=stored, name="kong")
    assert "http.url" not in root.attributes and root.attributes["http.status_code"] == 503
    assert Span.objects.filter(trace=stored).count() == 3
    request = PayloadCapture.objects.get(trace=stored, kind="client_request")
    assert BODY_SECRET in request.body.reveal().decode()
    assert request.headers.reveal()["x-secret"] == HEADER_SECRET
    assert QUERY_SECRET in request.url.reveal()
    assert str(request.body) == "[encrypted]"
    messages = sorted(log.message.reveal() for log in RequestLog.objects.filter(session=debug_session))
    assert messages == ["[key-auth] ok " + LOG_SECRET, "upstream slow"]
    assert RequestLog.objects.filter(trace_id=trace["trace_id"]).count() == 2
    # One data key per purpose for this session, scoped to it and its control plane.
    scope_ref = f"{debug_session.control_plane_id}/{debug_session.pk}"
    assert set(DataKey.objects.values_list("purpose", "scope_ref")) == {
        ("debugger.payload", scope_ref), ("debugger.log", scope_ref)}


def test_the_database_holds_only_ciphertext(dp_client, debug_session):
    post_traces(dp_client, debug_session, [trace_json()])
    with connection.cursor() as cursor:
        cursor.execute("SELECT url, headers, body FROM debugger_payloadcapture")
        columns = [bytes(value) for row in cursor.fetchall() for value in row if value is not None]
        cursor.execute("SELECT message FROM debugger_requestlog")
        columns += [bytes(row[0]) for row in cursor.fetchall()]
    assert columns and all(column[0] == 2 for column in columns)  # envelope v2
    for secret in (BODY_SECRET, HEADER_SECRET, QUERY_SECRET, LOG_SECRET):
        assert not any(secret.encode() in column for column in columns)


def test_retrying_a_batch_is_idempotent(dp_client, debug_session):
    trace = trace_json()
    post_traces(dp_client, debug_session, [trace])
    again = post_traces(dp_client, debug_session, [trace, trace]).json()
    assert (again["accepted"], again["duplicates"]) == (0, 2)
    assert Trace.objects.count() == 1 and PayloadCapture.objects.count() == 2


def test_max_samples_drops_the_rest_and_completes_the_session(dp_client, make_session):
    session = make_session(max_samples=2)
    body = post_traces(dp_client, session, [trace_json() for _ in range(3)]).json()
    assert (body["accepted"], body["dropped"], body["session"]["status"]) == (2, 1, "completed")
    response = post_traces(dp_client, session, [trace_json()])
    assert response.status_code == 409
    assert problem(response)["code"] == "session_closed"
    assert Trace.objects.count() == 2


def test_what_the_session_does_not_capture_is_dropped(dp_client, make_session):
    session = make_session(capture_request_body=False, capture_response_headers=False, capture_logs=False)
    post_traces(dp_client, session, [trace_json()])
    request = PayloadCapture.objects.get(kind="client_request")
    response = PayloadCapture.objects.get(kind="client_response")
    assert request.body is None and request.body_size == 0 and request.headers is not None
    assert response.headers is None and response.body is not None
    assert not RequestLog.objects.exists()
    assert not DataKey.objects.filter(purpose="debugger.log").exists()


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda t: t.update(trace_id="XYZ"), "traces.0.trace_id"),
    (lambda t: t["spans"][1].update(parent_span_id="0" * 16), "traces.0"),
    (lambda t: t["spans"][0].update(end_time_unix_nano=0), "traces.0.spans.0"),
    (lambda t: t["payloads"][0].update(body_base64="not base64!"), "traces.0.payloads.0.body_base64"),
    (lambda t: t["payloads"][1].update(url="https://x"), "traces.0.payloads.1"),
    (lambda t: t.update(surprise=1), "traces.0.surprise"),
    (lambda t: t["logs"][0].update(level="loud"), "traces.0.logs.0.level"),
])
def test_invalid_traces_are_refused_with_problem_details(dp_client, debug_session, mutate, field):
    trace = trace_json()
    mutate(trace)
    response = post_traces(dp_client, debug_session, [trace])
    assert response.status_code == 400
    fields = [item["field"] for item in problem(response)["invalid_parameters"]]
    assert any(name.startswith(field) for name in fields), fields
    assert debugger_rows() == {"Trace": 0, "Span": 0, "PayloadCapture": 0, "RequestLog": 0}


def test_an_oversized_body_is_refused_before_parsing(dp_client, debug_session):
    response = dp_client.post(f"{SESSIONS}/{debug_session.pk}/traces", b"{}", content_type="application/json",
                              CONTENT_LENGTH=str(3 * 1024 * 1024))
    assert response.status_code == 413
    assert "limit" in problem(response)["detail"]


def test_a_control_plane_token_works_only_in_its_region(dp_client, debug_session):
    response = post_traces(dp_client, debug_session, [trace_json()], region="eu")
    assert response.status_code == 404
    assert "us region" in problem(response)["detail"]


def test_a_token_cannot_touch_another_control_planes_sessions(dp_client, org, org_admin, other_control_plane,
                                                              other_org_admin, make_session):
    sibling = factories.make_control_plane(org, name="storefront")
    for session in (make_session(cp=sibling), make_session(cp=other_control_plane, actor=other_org_admin)):
        assert post_traces(dp_client, session, [trace_json()]).status_code == 404
        payloads = dp_client.post(f"{SESSIONS}/{session.pk}/payloads", {"payloads": [
            {"trace_id": "a" * 32, "kind": "client_response", "headers": {}}]}, content_type="application/json")
        assert payloads.status_code == 404
        logs = dp_client.post(f"{SESSIONS}/{session.pk}/logs", {"logs": [
            {"time": "2026-01-01T00:00:00Z", "level": "info", "message": "x"}]}, content_type="application/json")
        assert logs.status_code == 404
        assert dp_client.post(f"{SESSIONS}/{session.pk}/done").status_code == 404
        session.refresh_from_db()
        assert session.status == SessionStatus.PENDING
    assert debugger_rows() == {"Trace": 0, "Span": 0, "PayloadCapture": 0, "RequestLog": 0}


def test_late_payloads_and_logs_of_stored_traces(dp_client, debug_session):
    trace = trace_json(payloads=False, logs=False)
    post_traces(dp_client, debug_session, [trace])
    response = dp_client.post(f"{SESSIONS}/{debug_session.pk}/payloads", {"payloads": [
        {"trace_id": trace["trace_id"], "kind": "upstream_response", "headers": {"server": "gunicorn"},
         "body_base64": "aGVsbG8="},
        {"trace_id": "f" * 32, "kind": "client_response", "headers": {}},
    ]}, content_type="application/json")
    assert response.status_code == 400
    assert [p["field"] for p in problem(response)["invalid_parameters"]] == ["payloads.1.trace_id"]
    assert not PayloadCapture.objects.exists()
    ok = dp_client.post(f"{SESSIONS}/{debug_session.pk}/payloads", {"payloads": [
        {"trace_id": trace["trace_id"], "kind": "upstream_response", "headers": {"server": "gunicorn"},
         "body_base64": "aGVsbG8="}]}, content_type="application/json")
    assert ok.status_code == 202 and ok.json()["accepted"] == 1
    assert PayloadCapture.objects.get().body.reveal() == b"hello"
    logs = dp_client.post(f"{SESSIONS}/{debug_session.pk}/logs", {"logs": [
        {"time": "2026-01-01T00:00:00Z", "level": "warn", "message": "late line", "trace_id": trace["trace_id"]}]},
        content_type="application/json")
    assert logs.status_code == 202
    assert RequestLog.objects.get().message.reveal() == "late line"


def test_done_completes_the_session_and_further_traces_are_refused(dp_client, debug_session):
    response = dp_client.post(f"{SESSIONS}/{debug_session.pk}/done")
    assert response.status_code == 200 and response.json()["status"] == "completed"
    assert dp_client.get(SESSIONS).json()["data"] == []
    assert post_traces(dp_client, debug_session, [trace_json()]).status_code == 409
    # Payloads of traces already stored are still taken for a few minutes.
    assert dp_client.post(f"{SESSIONS}/{debug_session.pk}/done").json()["status"] == "completed"


def test_a_session_past_its_end_times_out(dp_client, debug_session):
    DebugSession.objects.filter(pk=debug_session.pk).update(ends_at=debug_session.created_at)
    response = post_traces(dp_client, debug_session, [trace_json()])
    assert response.status_code == 409
    debug_session.refresh_from_db()
    assert debug_session.status == SessionStatus.TIMED_OUT


def test_kms_down_during_ingest_answers_503_and_stores_nothing(dp_client, debug_session, local_kms):
    local_kms.stop()
    try:
        response = post_traces(dp_client, debug_session, [trace_json(), trace_json()])
    finally:
        local_kms.start()
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert problem(response)["code"] == "kms_unavailable"
    assert debugger_rows() == {"Trace": 0, "Span": 0, "PayloadCapture": 0, "RequestLog": 0}
    assert not DataKey.objects.exists()
    # Once KMS is back, the same batch goes through.
    fresh_reader()
    assert post_traces(dp_client, debug_session, [trace_json()]).status_code == 202


def test_a_disabled_cmek_refuses_writes_without_storing_anything(dp_client, debug_session, linked_cmek):
    local_kms.disable_key(linked_cmek)
    try:
        response = post_traces(dp_client, debug_session, [trace_json()])
    finally:
        local_kms.enable_key(linked_cmek)
    # Someone must re-enable the key: 409 and no Retry-After, so a data plane does not retry it on a timer.
    assert response.status_code == 409 and "Retry-After" not in response
    assert problem(response)["code"] == "key_disabled" and problem(response)["retryable"] is False
    assert debugger_rows() == {"Trace": 0, "Span": 0, "PayloadCapture": 0, "RequestLog": 0}


def test_traces_without_payloads_need_no_key(dp_client, debug_session, local_kms):
    """Trace metadata is not encrypted: with KMS down, a trace without payloads or logs is still stored."""
    local_kms.stop()
    try:
        response = post_traces(dp_client, debug_session, [trace_json(payloads=False, logs=False)])
    finally:
        local_kms.start()
    assert response.status_code == 202
    assert Trace.objects.count() == 1 and Span.objects.count() == 3


def test_openapi_documents_the_ingest_endpoints(client):
    spec = client.get("/api/us/v1/openapi.json").json()
    assert spec["servers"][0]["url"] == "/api/us/v1"
    assert "/debugger/sessions/{session_id}/traces" in spec["paths"]


def test_a_data_plane_sees_no_other_client(debug_session):
    assert Client().get(SESSIONS, HTTP_AUTHORIZATION="Bearer kdpt_nope").status_code == 401


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda t: t["logs"][0].update(time="0319-05-31T08:13:56-18:03"), "traces.0.logs.0.time"),
    (lambda t: t.update(start_time="9999-12-31T23:59:59-10:00"), "traces.0.start_time"),
    (lambda t: t.update(route_id="route\x00"), "traces.0.route_id"),
    (lambda t: t["spans"][0]["attributes"].update({"k": "v\x00"}), "traces.0.spans.0.attributes"),
])
def test_values_the_database_would_choke_on_are_refused(dp_client, debug_session, mutate, field):
    trace = trace_json()
    mutate(trace)
    response = post_traces(dp_client, debug_session, [trace])
    assert response.status_code == 400
    assert any(p["field"].startswith(field) for p in problem(response)["invalid_parameters"])


def test_timestamps_are_stored_in_utc(dp_client, debug_session):
    trace = trace_json()
    trace["start_time"] = "2026-01-01T00:00:00+15:30"
    assert post_traces(dp_client, debug_session, [trace]).status_code == 202
    assert Trace.objects.get().start_time.isoformat() == "2025-12-31T08:30:00+00:00"


def test_not_a_number_is_refused(dp_client, debug_session):
    body = json.dumps({"traces": [trace_json()]}).replace('"http.status_code": 201', '"http.status_code": NaN')
    response = dp_client.post(f"{SESSIONS}/{debug_session.pk}/traces", body, content_type="application/json")
    assert response.status_code == 400
    assert not Trace.objects.exists()


DENY_ALL = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}]}
KEY_STATE_CHANGES = {
    "key_disabled": local_kms.disable_key,
    "key_pending_deletion": local_kms.schedule_key_deletion,
    "key_access_denied": lambda arn: local_kms.put_key_policy(arn, DENY_ALL),
    "key_not_found": local_kms.delete_key_material_or_key,
}


@pytest.mark.parametrize("code", list(KEY_STATE_CHANGES))
def test_a_key_someone_must_fix_is_409_without_retry_after(dp_client, debug_session, linked_cmek, code):
    """Every permanent key state refuses the write with its code and no Retry-After (one home:
    `envelope.ERROR_CODES`), so a data plane drops the batch instead of retrying it on a timer."""
    KEY_STATE_CHANGES[code](linked_cmek)
    fresh_reader()
    response = post_traces(dp_client, debug_session, [trace_json()])
    assert response.status_code == 409 and "Retry-After" not in response
    assert (problem(response)["code"], problem(response)["retryable"]) == (code, False)
    assert debugger_rows() == {"Trace": 0, "Span": 0, "PayloadCapture": 0, "RequestLog": 0}


def test_traces_keep_the_route_and_service_names_their_spans_carry_as_stored(dp_client, debug_session):
    """As the traces table read them from the spans: the earliest span naming one (whatever its place in the
    list), its first attribute listed, scrubbed as the span is stored, at most 200 characters; else blank."""
    named, reordered, scrubbed, bare = (trace_json() for _ in range(4))
    named["spans"][1]["attributes"].update({"route.name": "fallback", "kong.route.name": "orders-create",
                                            "service.name": "orders"})
    reordered["spans"][0]["attributes"]["route.name"] = "from-root"
    reordered["spans"][2]["attributes"].update({"kong.route.name": "from-upstream", "kong.service.name": "svc"})
    reordered["spans"].reverse()  # the upstream span first in the list; the root span still starts first
    scrubbed["spans"][0]["attributes"].update({"kong.route.name": f"Bearer {QUERY_SECRET}",
                                               "route.name": f"/orders?token={QUERY_SECRET}", "kong.service.name": ""})
    scrubbed["spans"][1]["attributes"]["service.name"] = "s" * 300
    assert post_traces(dp_client, debug_session, [named, reordered, scrubbed, bare]).status_code == 202
    stored = {trace_id: (route, service) for trace_id, route, service in
              Trace.objects.values_list("trace_id", "route_name", "service_name")}
    assert [stored[trace["trace_id"]] for trace in (named, reordered, scrubbed, bare)] == [
        ("orders-create", "orders"), ("from-root", "svc"), ("/orders?token=REDACTED", "s" * 200), ("", "")]
    for trace in Trace.objects.all():  # what the look-up over the stored spans finds
        found = entity_names(trace.spans.values_list("attributes", flat=True), entities=("route", "service"))
        assert (trace.route_name, trace.service_name) == (found.get("route", ""), found.get("service", ""))
