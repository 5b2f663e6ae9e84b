"""Debugger test helpers: data-plane tokens, debug sessions, and ingest through the real API."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime

import pytest
from django.test import Client

from debugger import services
from encryption_keys import keyring
from encryption_keys.models import EncryptionKey
from konnect_admin import tokens
from tests import leaks

# Marker strings that must only ever appear where the payload is shown decrypted.
BODY_SECRET = leaks.plant("card-holder-Ada-Lovelace-4111")
HEADER_SECRET = leaks.plant("hdr-secret-7f3a9c")
QUERY_SECRET = leaks.plant("qs-secret-92bd")
LOG_SECRET = leaks.plant("log-secret-5e1d")
PATH = "/orders/42"


@pytest.fixture(autouse=True)
def kms_for_every_test(local_kms):
    """Every test here writes or reads encrypted payloads and logs: the local KMS server
    for each (tests/conftest.py's `local_kms`)."""
    return local_kms


def hex_id(digits: int) -> str:
    return secrets.token_hex(digits // 2)


def trace_json(*, trace_id: str | None = None, status: int = 201, method: str = "POST", total_ms: float = 42.0,
               route_id: str = "route-orders", service_id: str = "svc-orders", payloads: bool = True,
               logs: bool = True, body: bytes | None = None) -> dict:
    """One trace as a data plane posts it: three spans, client request/response payloads, two log lines."""
    trace_id = trace_id or hex_id(32)
    start = 1_760_000_000_000_000_000
    root, access, upstream = hex_id(16), hex_id(16), hex_id(16)
    body = body if body is not None else json.dumps({"card_holder": BODY_SECRET, "amount": 4200}).encode()
    trace = {
        "trace_id": trace_id,
        "start_time": datetime.now(UTC).isoformat(),
        "method": method,
        "status_code": status,
        "latency": {"total_ms": total_ms, "kong_ms": 2.0, "upstream_ms": total_ms - 2.0},
        "route_id": route_id,
        "service_id": service_id,
        "consumer_id": "consumer-1",
        "spans": [
            {"span_id": root, "name": "kong", "start_time_unix_nano": start,
             "end_time_unix_nano": start + int(total_ms * 1e6),
             "attributes": {"http.method": method, "http.url": f"https://api.test{PATH}?key={QUERY_SECRET}",
                            "http.client_ip": "198.51.100.7", "http.status_code": status}},
            {"span_id": access, "parent_span_id": root, "name": "kong.phase.access",
             "start_time_unix_nano": start + 100_000, "end_time_unix_nano": start + 1_100_000,
             "attributes": {"kong.plugin.name": "key-auth"}},
            {"span_id": upstream, "parent_span_id": root, "name": "kong.upstream.ttfb",
             "start_time_unix_nano": start + 2_000_000, "end_time_unix_nano": start + int(total_ms * 1e6),
             "attributes": {}},
        ],
        "payloads": [],
        "logs": [],
    }
    if payloads:
        trace["payloads"] = [
            {"kind": "client_request", "url": f"https://api.test{PATH}?key={QUERY_SECRET}",
             "headers": {"content-type": "application/json", "x-secret": HEADER_SECRET,
                         "authorization": "Bearer ****"},
             "body_base64": base64.b64encode(body).decode()},
            {"kind": "client_response", "headers": {"content-type": "application/json"},
             "body_base64": base64.b64encode(b'{"id": "ord_1", "status": "created"}').decode()},
        ]
    if logs:
        trace["logs"] = [
            {"time": datetime.now(UTC).isoformat(), "level": "info", "message": f"[key-auth] ok {LOG_SECRET}",
             "span_id": access},
            {"time": datetime.now(UTC).isoformat(), "level": "error", "message": "upstream slow", "span_id": upstream},
        ]
    return trace


@pytest.fixture
def dp_token(control_plane, org_admin):
    """A data-plane token of `control_plane`."""
    _token, text = tokens.data_plane_token_create(actor=org_admin, control_plane=control_plane, name="dp")
    return text


@pytest.fixture
def dp_client(dp_token):
    return Client(HTTP_AUTHORIZATION=f"Bearer {dp_token}")


@pytest.fixture
def make_session(control_plane, org_admin):
    def _make(cp=None, actor=None, **options):
        options.setdefault("duration_seconds", 600)
        return services.session_create(actor=actor or org_admin, control_plane=cp or control_plane, **options)

    return _make


@pytest.fixture
def debug_session(make_session):
    return make_session(name="checkout")


def post_traces(client: Client, session, traces: list[dict], *, region: str = "us"):
    return client.post(f"/api/{region}/v1/debugger/sessions/{session.pk}/traces", {"traces": traces},
                       content_type="application/json")


@pytest.fixture
def ingest(dp_client, debug_session):
    """`ingest(n=1, **trace options)` → the trace ids stored in `debug_session` through the API."""

    def _ingest(count: int = 1, session=None, **options):
        session = session or debug_session
        traces = [trace_json(**options) for _ in range(count)]
        response = post_traces(dp_client, session, traces)
        assert response.status_code == 202, response.content
        return [trace["trace_id"] for trace in traces]

    return _ingest


@pytest.fixture
def linked_cmek(org, cmek):
    """The organization's CMEK for the US region, linked before any data is written."""
    EncryptionKey.objects.create(organization=org, region="us", name="Acme US key", key_ref=cmek)
    return cmek


def fresh_reader():
    """A process that has never unwrapped a data key (the revocation bound has passed)."""
    keyring.reset_for_tests()
