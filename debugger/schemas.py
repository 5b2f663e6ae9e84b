"""Wire shapes of the data-plane ingest API (pydantic, through django-ninja). Limits are part of the contract."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

from ninja import Schema
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from debugger.attributes import scrub as scrub_attributes
from debugger.models import LogLevel, PayloadKind

TRACE_ID = r"^[0-9a-f]{32}$"
SPAN_ID = r"^[0-9a-f]{16}$"
MAX_TRACES_PER_REQUEST = 100
MAX_SPANS_PER_TRACE = 200
MAX_LOGS_PER_REQUEST = 500
MAX_PAYLOADS_PER_REQUEST = 400
MAX_ATTRIBUTES = 64
MAX_HEADERS = 200
MAX_BODY_BYTES = 256 * 1024
MAX_BASE64_CHARS = 4 * ((MAX_BODY_BYTES + 2) // 3)

# Batches (`POST …/sessions/{id}/trace-batches`, docs/debugger-ingest.md): what one request may carry in all.
# The body limit is checked before parsing (413); the counts after parsing, before anything is written (422).
BATCH_MAX_BODY_BYTES = 16 * 1024 * 1024
BATCH_MAX_TRACES = 500
BATCH_MAX_SPANS = 20_000
BATCH_MAX_PAYLOADS = 2_000
BATCH_MAX_LOGS = 5_000


def _utc(moment: datetime) -> datetime:
    """Timestamps are stored in UTC; far-off years and exotic offsets are refused, not passed to the database."""
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("is out of range") from None
    if not 1970 <= moment.year <= 9999:
        raise ValueError("must be between 1970 and 9999")
    return moment


def _no_nul(text: str) -> str:
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


Timestamp = Annotated[datetime, AfterValidator(_utc)]
Number = Annotated[float, Field(allow_inf_nan=False)]
AttributeValue = Annotated[str, Field(max_length=1024), AfterValidator(_no_nul)] | int | Number | bool
AttributeKey = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_no_nul)]
HeaderValue = Annotated[str, Field(max_length=8192)] | Annotated[list[Annotated[str, Field(max_length=8192)]],
                                                                   Field(max_length=32)]


class StrictSchema(BaseModel):
    """Input shapes: plain pydantic models. ninja's `Schema` wraps every nested object in a getter (for reading
    ORM objects), which cost more than half of a 50-trace batch's parse; inputs never come from the ORM."""

    model_config = ConfigDict(extra="forbid")


class SpanIn(StrictSchema):
    span_id: str = Field(pattern=SPAN_ID)
    parent_span_id: str | None = Field(default=None, pattern=SPAN_ID)
    name: Annotated[str, AfterValidator(_no_nul)] = Field(min_length=1, max_length=200)
    start_time_unix_nano: int = Field(ge=0)
    end_time_unix_nano: int = Field(ge=0)
    attributes: dict[AttributeKey, AttributeValue] = Field(
        default_factory=dict, max_length=MAX_ATTRIBUTES
    )

    @model_validator(mode="after")
    def ends_after_start(self):
        if self.end_time_unix_nano < self.start_time_unix_nano:
            raise ValueError("end_time_unix_nano is before start_time_unix_nano")
        return self

    def safe_attributes(self) -> tuple[dict, int]:
        """The attributes that may be stored unencrypted, and how many were dropped (debugger/attributes.py)."""
        return scrub_attributes(self.attributes)


class PayloadIn(StrictSchema):
    kind: Literal[tuple(PayloadKind.values)]  # type: ignore[valid-type]
    url: str | None = Field(default=None, min_length=1, max_length=8192)
    headers: dict[Annotated[str, Field(min_length=1, max_length=256)], HeaderValue] | None = Field(
        default=None, max_length=MAX_HEADERS
    )
    body_base64: str | None = Field(default=None, max_length=MAX_BASE64_CHARS)

    @field_validator("body_base64")
    @classmethod
    def is_base64(cls, value):
        if value is not None:
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("is not valid base64") from None
        return value

    @model_validator(mode="after")
    def url_only_on_requests(self):
        if self.url is not None and self.kind.endswith("_response"):
            raise ValueError("a response has no url")
        return self

    def body(self) -> bytes | None:
        return None if self.body_base64 is None else base64.b64decode(self.body_base64)


class LogIn(StrictSchema):
    time: Timestamp
    level: Literal[tuple(LogLevel.values)]  # type: ignore[valid-type]
    message: str = Field(min_length=1, max_length=8192)
    trace_id: str | None = Field(default=None, pattern=TRACE_ID)
    span_id: str | None = Field(default=None, pattern=SPAN_ID)


class LatencyIn(StrictSchema):
    total_ms: Number | None = Field(default=None, ge=0)
    upstream_ms: Number | None = Field(default=None, ge=0)
    kong_ms: Number | None = Field(default=None, ge=0)


class TraceIn(StrictSchema):
    trace_id: str = Field(pattern=TRACE_ID)
    start_time: Timestamp
    method: str = Field(min_length=1, max_length=16, pattern=r"^[A-Z][A-Z-]*$")
    status_code: int | None = Field(default=None, ge=100, le=599)
    latency: LatencyIn = Field(default_factory=LatencyIn)
    route_id: Annotated[str, AfterValidator(_no_nul)] = Field(default="", max_length=64)
    service_id: Annotated[str, AfterValidator(_no_nul)] = Field(default="", max_length=64)
    consumer_id: Annotated[str, AfterValidator(_no_nul)] = Field(default="", max_length=64)
    spans: list[SpanIn] = Field(default_factory=list, max_length=MAX_SPANS_PER_TRACE)
    payloads: list[PayloadIn] = Field(default_factory=list, max_length=4)
    logs: list[LogIn] = Field(default_factory=list, max_length=MAX_LOGS_PER_REQUEST)

    @model_validator(mode="after")
    def spans_form_a_tree(self):
        ids = [span.span_id for span in self.spans]
        if len(ids) != len(set(ids)):
            raise ValueError("span ids must be unique within a trace")
        known = set(ids)
        for span in self.spans:
            if span.parent_span_id is not None and span.parent_span_id not in known:
                raise ValueError(f"span {span.span_id} has a parent_span_id that is not in this trace")
        kinds = [payload.kind for payload in self.payloads]
        if len(kinds) != len(set(kinds)):
            raise ValueError("at most one payload of each kind per trace")
        return self


class TracesIn(StrictSchema):
    traces: list[TraceIn] = Field(min_length=1, max_length=MAX_TRACES_PER_REQUEST)


class TraceBatchIn(StrictSchema):
    """Many traces of one session. Per-request totals are checked by `batch_over_limits` (422), not here: the
    schema's own refusals are 400s naming one field, a batch over a limit is refused as a whole."""

    traces: list[TraceIn] = Field(min_length=1, description=(
        f"At most {BATCH_MAX_TRACES} traces, {BATCH_MAX_SPANS} spans, {BATCH_MAX_PAYLOADS} payload captures and "
        f"{BATCH_MAX_LOGS} log lines in all; at most {MAX_SPANS_PER_TRACE} spans per trace."))


def batch_over_limits(batch: TraceBatchIn) -> list[tuple[str, int, int]]:
    """(what, how many, limit) for every per-request limit the batch passes."""
    counts = {
        "traces": (len(batch.traces), BATCH_MAX_TRACES),
        "spans": (sum(len(trace.spans) for trace in batch.traces), BATCH_MAX_SPANS),
        "payloads": (sum(len(trace.payloads) for trace in batch.traces), BATCH_MAX_PAYLOADS),
        "logs": (sum(len(trace.logs) for trace in batch.traces), BATCH_MAX_LOGS),
    }
    return [(what, count, limit) for what, (count, limit) in counts.items() if count > limit]


class TracePayloadIn(PayloadIn):
    trace_id: str = Field(pattern=TRACE_ID)


class PayloadsIn(StrictSchema):
    payloads: list[TracePayloadIn] = Field(min_length=1, max_length=MAX_PAYLOADS_PER_REQUEST)


class LogsIn(StrictSchema):
    logs: list[LogIn] = Field(min_length=1, max_length=MAX_LOGS_PER_REQUEST)


# --- responses ---------------------------------------------------------------------------------------------


class CaptureOut(Schema):
    logs: bool
    request_headers: bool
    request_body: bool
    response_headers: bool
    response_body: bool


class SamplingOut(Schema):
    kind: str
    value: str


class SessionOut(Schema):
    id: UUID
    status: str
    sampling: SamplingOut
    max_samples: int
    remaining_samples: int
    capture: CaptureOut
    started_at: datetime | None
    ends_at: datetime


class SessionListOut(Schema):
    data: list[SessionOut]


class IngestOut(Schema):
    accepted: int
    duplicates: int = 0
    dropped: int = 0
    dropped_attributes: int = 0
    session: SessionOut


class BatchOut(IngestOut):
    """Every trace of the batch not in `dropped_trace_ids` is stored (accepted now, or a duplicate stored before)."""

    dropped_trace_ids: list[str] = Field(default_factory=list,
                                         description="Traces refused because the session reached max_samples.")
