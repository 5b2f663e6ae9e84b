"""Batched ingest (`POST …/sessions/{id}/trace-batches`): limits, idempotency, all or nothing, and the session's
counter under concurrent writers (threads, each with its own database connection; PostgreSQL in CI's second run)."""

from __future__ import annotations

import base64
import json
import threading
import uuid

import pytest
from django.db import connection, connections
from django.test import Client

from debugger import ingest, schemas
from debugger.models import DebugSession, PayloadCapture, RequestLog, SessionStatus, Span, Trace
from debugger.rows import uuid4s
from debugger.schemas import TraceIn
from encryption_keys import keyring
from encryption_keys.models import DataKey
from tests.debugger.conftest import BODY_SECRET, LOG_SECRET, fresh_reader, hex_id, trace_json

pytestmark = pytest.mark.django_db


def batch_url(session) -> str:
    return f"/api/us/v1/debugger/sessions/{session.pk}/trace-batches"


def post_batch(client: Client, session, traces: list[dict]):
    return client.post(batch_url(session), {"traces": traces}, content_type="application/json")


def problem(response) -> dict:
    assert response["Content-Type"] == "application/problem+json"
    return json.loads(response.content)


def rows() -> dict:
    return {model.__name__: model.objects.count() for model in (Trace, Span, PayloadCapture, RequestLog)}


NOTHING = {"Trace": 0, "Span": 0, "PayloadCapture": 0, "RequestLog": 0}


def test_a_batch_stores_every_trace_with_its_spans_payloads_and_logs(dp_client, debug_session):
    traces = [trace_json() for _ in range(50)]
    response = post_batch(dp_client, debug_session, traces)
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["dropped"], body["dropped_trace_ids"]) == (50, 0, 0, [])
    assert body["dropped_attributes"] == 100 and body["session"]["remaining_samples"] == 50
    assert rows() == {"Trace": 50, "Span": 150, "PayloadCapture": 100, "RequestLog": 100}
    debug_session.refresh_from_db()
    assert debug_session.samples_taken == 50
    # Sealed per value under the session's keys, read back through the ORM by a process with a cold cache.
    fresh_reader()
    stored = Trace.objects.get(trace_id=traces[7]["trace_id"])
    request = PayloadCapture.objects.get(trace=stored, kind="client_request")
    assert BODY_SECRET in request.body.reveal().decode()
    assert LOG_SECRET in RequestLog.objects.get(trace_id=stored.trace_id, level="info").message.reveal()
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM debugger_payloadcapture")
        assert all(bytes(value)[0] == 2 and BODY_SECRET.encode() not in bytes(value)
                   for (value,) in cursor.fetchall())
    scope_ref = f"{debug_session.control_plane_id}/{debug_session.pk}"
    assert set(DataKey.objects.values_list("purpose", "scope_ref")) == {
        ("debugger.payload", scope_ref), ("debugger.log", scope_ref)}


def test_payload_and_log_ids_are_random_version_4_uuids_distinct_across_batches(dp_client, debug_session):
    """The ids come from one OS read per batch (`rows.uuid4s`): still uuid4's bits, none shared between rows."""
    for _ in range(2):
        assert post_batch(dp_client, debug_session, [trace_json() for _ in range(20)]).status_code == 202
    ids = list(PayloadCapture.objects.values_list("id", flat=True)) + list(RequestLog.objects.values_list("id", flat=True))
    assert len(ids) == 160 and len(set(ids)) == 160
    assert {(pk.version, pk.variant) for pk in ids} == {(4, uuid.RFC_4122)}


def test_uuid4s_sets_the_version_bits_on_distinct_random_values():
    pks = uuid4s(64)
    assert len(pks) == len(set(pks)) == 64 and uuid4s(0) == []
    assert {(pk.version, pk.variant) for pk in pks} == {(4, uuid.RFC_4122)}
    assert len({pk.int >> 80 for pk in pks}) == 64  # not one value with a counter in its low bits


def test_a_retried_batch_is_acknowledged_and_stored_once(dp_client, debug_session):
    traces = [trace_json() for _ in range(5)]
    assert post_batch(dp_client, debug_session, traces[:3]).status_code == 202
    again = post_batch(dp_client, debug_session, traces + traces[:1])  # a retry, grown, with a repeat inside
    assert again.status_code == 202
    body = again.json()
    assert (body["accepted"], body["duplicates"]) == (2, 4)
    assert rows() == {"Trace": 5, "Span": 15, "PayloadCapture": 10, "RequestLog": 10}
    debug_session.refresh_from_db()
    assert debug_session.samples_taken == 5


def test_a_retry_after_the_batch_completed_the_session_is_still_acknowledged(dp_client, make_session):
    session = make_session(max_samples=3)
    traces = [trace_json() for _ in range(3)]
    first = post_batch(dp_client, session, traces).json()
    assert (first["accepted"], first["session"]["status"]) == (3, "completed")
    retry = post_batch(dp_client, session, traces)
    assert retry.status_code == 202 and retry.json()["duplicates"] == 3
    refused = post_batch(dp_client, session, [*traces, trace_json()])  # a new trace: the session takes no more
    assert refused.status_code == 409 and problem(refused)["code"] == "session_closed"
    assert Trace.objects.count() == 3


def test_traces_past_max_samples_are_dropped_and_named(dp_client, make_session):
    session = make_session(max_samples=4)
    post_batch(dp_client, session, [trace_json()])
    traces = [trace_json() for _ in range(5)]
    body = post_batch(dp_client, session, traces).json()
    assert (body["accepted"], body["dropped"]) == (3, 2)
    assert body["dropped_trace_ids"] == [trace["trace_id"] for trace in traces[3:]]
    assert body["session"]["status"] == "completed" and body["session"]["remaining_samples"] == 0
    # The dropped traces left nothing behind: no trace, span, payload or log line.
    assert rows() == {"Trace": 4, "Span": 12, "PayloadCapture": 8, "RequestLog": 8}
    assert not Trace.objects.filter(trace_id__in=body["dropped_trace_ids"]).exists()
    session.refresh_from_db()
    assert (session.samples_taken, session.status) == (4, SessionStatus.COMPLETED)


@pytest.mark.parametrize(("what", "make"), [
    ("traces", lambda: [trace_json(payloads=False, logs=False) for _ in range(schemas.BATCH_MAX_TRACES + 1)]),
    ("spans", lambda: [_with_spans(trace_json(payloads=False, logs=False), 200) for _ in range(101)]),
    ("logs", lambda: [_with_logs(trace_json(payloads=False), 500) for _ in range(11)]),
])
def test_a_batch_over_a_limit_is_refused_whole_with_422(dp_client, debug_session, what, make):
    response = post_batch(dp_client, debug_session, make())
    assert response.status_code == 422
    body = problem(response)
    assert body["code"] == "batch_too_large" and "limit" in body["detail"]
    assert [item["field"] for item in body["invalid_parameters"]] == [what]
    assert body["invalid_parameters"][0]["maximum"] == getattr(schemas, f"BATCH_MAX_{what.upper()}")
    assert rows() == NOTHING


def test_a_body_over_the_batch_limit_is_refused_before_parsing(dp_client, debug_session):
    response = dp_client.post(batch_url(debug_session), b"{}", content_type="application/json",
                              CONTENT_LENGTH=str(schemas.BATCH_MAX_BODY_BYTES + 1))
    assert response.status_code == 413
    assert str(schemas.BATCH_MAX_BODY_BYTES) in problem(response)["detail"]
    # The single-trace endpoint keeps its own, smaller limit.
    small = dp_client.post(f"/api/us/v1/debugger/sessions/{debug_session.pk}/traces", b"{}",
                           content_type="application/json", CONTENT_LENGTH=str(3 * 1024 * 1024))
    assert small.status_code == 413


def test_one_invalid_trace_refuses_the_whole_batch(dp_client, debug_session):
    traces = [trace_json() for _ in range(3)]
    traces[2]["spans"][1]["parent_span_id"] = "f" * 16
    response = post_batch(dp_client, debug_session, traces)
    assert response.status_code == 400
    assert problem(response)["invalid_parameters"][0]["field"].startswith("traces.2")
    assert rows() == NOTHING


def test_kms_down_refuses_the_batch_and_stores_nothing(dp_client, debug_session, local_kms):
    local_kms.stop()
    try:
        response = post_batch(dp_client, debug_session, [trace_json() for _ in range(20)])
    finally:
        local_kms.start()
    assert response.status_code == 503 and int(response["Retry-After"]) > 0
    assert rows() == NOTHING
    debug_session.refresh_from_db()
    assert debug_session.samples_taken == 0  # the counter rolled back with the rows
    fresh_reader()
    assert post_batch(dp_client, debug_session, [trace_json()]).status_code == 202


def test_the_openapi_documents_the_batch_and_its_limits(client):
    document = client.get("/api/us/v1/openapi.json").json()
    operation = document["paths"]["/debugger/sessions/{session_id}/trace-batches"]["post"]
    assert str(schemas.BATCH_MAX_TRACES) in operation["description"]
    assert {"202", "413", "422"} <= set(operation["responses"])
    assert "/debugger/sessions/{session_id}/traces" in document["paths"]


def _with_spans(trace: dict, count: int) -> dict:
    root = trace["spans"][0]
    trace["spans"] = [root] + [
        {"span_id": f"{index:016x}", "parent_span_id": root["span_id"], "name": "s",
         "start_time_unix_nano": root["start_time_unix_nano"], "end_time_unix_nano": root["start_time_unix_nano"]}
        for index in range(1, count)
    ]
    return trace


def _with_logs(trace: dict, count: int) -> dict:
    log = trace["logs"][0]
    trace["logs"] = [log] * count
    return trace


# --- concurrency: no lock while writing, yet the limit holds and the count is exact ------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_keep_max_samples_and_an_exact_count(debug_session_factory):
    """Eight threads post overlapping batches (each also retries another's) at once into one session with room
    for 35: all of them read a count of 0 and write without a lock.

    Without the conditional counter update, writers that read the count before the others committed would
    all see room and the session would end over its limit; without ON CONFLICT, overlapping ids would fail."""
    limit, threads_count, batches_each, per_batch = 35, 8, 3, 10
    session = debug_session_factory(max_samples=limit)
    batches = [[TraceIn.model_validate(trace_json()) for _ in range(per_batch)]
               for _ in range(threads_count * batches_each)]
    results, errors = [], []
    barrier = threading.Barrier(threads_count)

    def writer(number: int) -> None:
        try:
            barrier.wait()
            for index in range(batches_each):
                own = batches[number * batches_each + index]
                neighbour = batches[((number + 1) % threads_count) * batches_each + index]
                for traces in (own, neighbour[:5] + own[:2]):
                    try:
                        results.append(ingest.traces_ingest(control_plane=session.control_plane,
                                                            session_id=session.pk, traces=traces))
                    except ingest.SessionClosed:
                        results.append(None)
        except Exception as error:  # noqa: BLE001 - reported below with the thread's number
            errors.append((number, repr(error)))
        finally:
            connections.close_all()

    workers = [threading.Thread(target=writer, args=(number,)) for number in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not errors, errors
    session.refresh_from_db()
    stored = Trace.objects.filter(session=session).count()
    accepted = sum(result.accepted for result in results if result is not None)
    assert stored == limit  # 240 distinct traces were offered: the limit is reached, never passed
    assert session.samples_taken == stored == accepted
    assert session.status == SessionStatus.COMPLETED
    assert Span.objects.filter(trace__session=session).count() == 3 * stored
    assert PayloadCapture.objects.filter(trace__session=session).count() == 2 * stored
    assert RequestLog.objects.filter(session=session).count() == 2 * stored
    dropped = {trace_id for result in results if result is not None for trace_id in result.dropped_trace_ids}
    assert not Trace.objects.filter(trace_id__in=dropped).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_under_the_limit_count_every_trace(debug_session_factory):
    session = debug_session_factory(max_samples=1000)
    batches = [[TraceIn.model_validate(trace_json(logs=False)) for _ in range(8)] for _ in range(12)]
    errors = []

    def writer(traces) -> None:
        try:
            for _attempt in range(2):  # every batch is sent twice, concurrently with the others
                ingest.traces_ingest(control_plane=session.control_plane, session_id=session.pk, traces=traces)
        except Exception as error:  # noqa: BLE001
            errors.append(repr(error))
        finally:
            connections.close_all()

    workers = [threading.Thread(target=writer, args=(batch,)) for batch in batches]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not errors, errors
    session.refresh_from_db()
    assert Trace.objects.filter(session=session).count() == session.samples_taken == 96
    assert session.status == SessionStatus.IN_PROGRESS


@pytest.fixture
def debug_session_factory(make_session):
    def _make(**options) -> DebugSession:
        session = make_session(**options)
        keyring.reset_for_tests()
        return DebugSession.objects.select_related("control_plane").get(pk=session.pk)

    return _make


@pytest.mark.django_db(transaction=True)
def test_a_batch_reserves_data_key_uses_before_its_transaction(debug_session_factory):
    """The DataKey row's reservation UPDATE runs before the batch's transaction, not inside it: inside, it would
    hold that row locked until commit and concurrent batches of the session would queue on it."""
    from django.test.utils import CaptureQueriesContext

    session = debug_session_factory(max_samples=1000)
    batch = [TraceIn.model_validate(trace_json()) for _ in range(100)]  # 600 payload values: over half a lease
    for _ in range(3):
        for trace in batch:
            trace.trace_id = hex_id(32)
        with CaptureQueriesContext(connection) as queries:
            ingest.traces_ingest(control_plane=session.control_plane, session_id=session.pk, traces=batch)
        statements = [query["sql"] for query in queries.captured_queries]
        first_insert = next(i for i, sql in enumerate(statements) if sql.startswith("INSERT INTO \"debugger_trace\""))
        assert not [sql for sql in statements[first_insert:] if "encryption_keys_datakey" in sql and "UPDATE" in sql]
    assert DataKey.objects.filter(purpose="debugger.payload").exists()


@pytest.mark.django_db(transaction=True)
def test_consecutive_batches_share_one_reservation_per_scope(debug_session_factory):
    """lease_ahead reserves for several batches of the size at hand: the batches after the first make no round
    trip to the DataKey rows, and every value is still sealed under its scope's key (one reservation each)."""
    from django.test.utils import CaptureQueriesContext

    session = debug_session_factory(max_samples=1000)
    batch = [TraceIn.model_validate(trace_json()) for _ in range(100)]  # 600 payload values, 200 log lines
    writes = []
    for _ in range(3):
        for trace in batch:
            trace.trace_id = hex_id(32)
        with CaptureQueriesContext(connection) as queries:
            ingest.traces_ingest(control_plane=session.control_plane, session_id=session.pk, traces=batch)
        writes.append([query["sql"] for query in queries.captured_queries
                       if "encryption_keys_datakey" in query["sql"] and query["sql"].startswith(("UPDATE", "INSERT"))])
    assert [len(statements) for statements in writes] == [2, 0, 0]  # payload and log scopes, first batch only
    bodies = [row.body.reveal() for row in PayloadCapture.objects.filter(trace__session=session, body__isnull=False)]
    assert len(bodies) == 600
    assert set(bodies) == {base64.b64decode(payload["body_base64"]) for payload in trace_json()["payloads"]}
    assert RequestLog.objects.filter(session=session).count() == 600
