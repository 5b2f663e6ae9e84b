"""Plaintext twins of PayloadCapture and RequestLog, and a URLconf serving the ingest over them, for benchmarks
whose app runs in other processes (gunicorn): `ROOT_URLCONF = "bench.twins"` (bench/settings_ingest.py).

The twins have plain url/headers/body/message columns; their endpoints run the very same code as the app's
(`debugger.api.trace_batch` and `debugger.ingest.traces_ingest` with `store=` the twins) behind the same
authentication, body limits and schemas. bench/debugger.py creates these same twins in its own process.

Same shape as the encrypted tables but for the sealing: the same columns (RequestLog's `created_at` included),
indexes and constraints, and on PostgreSQL the same day partitions (`debugger.partitions.convert_table`, primary
key and unique constraints widened by `created_at`, no default partition) — so a ratio against them measures
encryption, not a cheaper table.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from uuid import UUID

from django.db import models
from django.db.models.functions import Now
from django.urls import include, path
from ninja import Router, Status

import konnect_admin.urls  # noqa: F401 - registers the konnect_region path converter
from debugger import api as debugger_api
from debugger import ingest
from debugger.models import DebugSession, LogLevel, PayloadKind, Trace
from debugger.schemas import BATCH_MAX_BODY_BYTES, BatchOut, IngestOut, TracesIn
from konnect_admin.api import make_api


class PlainPayloadCapture(models.Model):  # noqa: DJ008 - a benchmark twin
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=24, choices=PayloadKind)
    url = models.TextField(null=True)  # noqa: DJ001 - mirrors the encrypted field's NULL
    headers = models.JSONField(null=True)
    body = models.BinaryField(null=True)
    body_size = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        app_label = "debugger"
        db_table = "bench_plain_payloadcapture"
        constraints = [models.UniqueConstraint(fields=["trace", "kind"], name="bench_plain_payload_kind")]


class PlainRequestLog(models.Model):  # noqa: DJ008 - a benchmark twin
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    session = models.ForeignKey(DebugSession, on_delete=models.CASCADE, related_name="+")
    trace_id = models.CharField(max_length=32, blank=True)
    span_id = models.CharField(max_length=16, blank=True)
    time = models.DateTimeField()
    level = models.CharField(max_length=8, choices=LogLevel)
    message = models.TextField()
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        app_label = "debugger"
        db_table = "bench_plain_requestlog"
        indexes = [models.Index(fields=["session", "time"], name="bench_plain_log_time"),  # RequestLog's indexes
                   models.Index(fields=["session", "trace_id"], name="bench_plain_log_trace")]


STORE = ingest.CaptureStore(payload_model=PlainPayloadCapture, log_model=PlainRequestLog)


def create_tables() -> None:
    from django.db import connection

    from debugger import partitions

    with connection.schema_editor() as editor:
        editor.create_model(PlainPayloadCapture)
        editor.create_model(PlainRequestLog)
    if partitions.enabled():
        today = datetime.now(UTC).date()
        with connection.cursor() as cursor:
            for model in (PlainPayloadCapture, PlainRequestLog):
                partitions.convert_table(cursor, model._meta.db_table, today=today, ahead=1)
                partitions.remove_default(cursor, model._meta.db_table)


router = Router(auth=debugger_api.DataPlaneIngestAuth(max_body_bytes=debugger_api.INGEST_MAX_BODY_BYTES))


@router.post("/sessions/{session_id}/traces", response={202: IngestOut})
@debugger_api.ingest_problems
def post_traces(request, session_id: UUID, payload: TracesIn):  # debugger.api.post_traces, with the twins
    result = ingest.traces_ingest(control_plane=request.control_plane, session_id=session_id, traces=payload.traces,
                                  store=STORE)
    return Status(202, debugger_api._result_out(result))


@router.post("/sessions/{session_id}/trace-batches", response={202: BatchOut},
             auth=debugger_api.DataPlaneIngestAuth(max_body_bytes=BATCH_MAX_BODY_BYTES))
@debugger_api.ingest_problems
def post_trace_batch(request, session_id: UUID):  # debugger.api.post_trace_batch, with the twins
    return debugger_api.trace_batch(request, session_id, store=STORE)


api = make_api(title="bench plaintext twin", version="0", namespace="bench-plain", url_version="v1-plaintext-twin")
api.add_router("/debugger", router)

urlpatterns = [
    path("api/<konnect_region:region>/v1-plaintext-twin/", api.urls),  # under /api/: bearer auth, no login
    path("", include("konnect_admin.urls")),
]
