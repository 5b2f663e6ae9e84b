"""Data-plane APIs of the Debugger.

    /api/{region}/v1/debugger/…   ingest (DataPlaneTokenAuth, scoped to the token's control plane)
    /api/{region}/v0/blobs/{id}   Konnect's blob API (data-plane token or personal access token)

Bodies above the limit are refused before they are parsed. A write that cannot get a data key stores nothing
and answers with the key error's code (`encryption_keys.error_reporting.problem_for`): 503 with Retry-After only
for `kms_unavailable`; 409 without Retry-After for a key someone must fix (`key_disabled`, …), so a data plane
honouring Retry-After never retries a disabled or deleted key forever.
"""

from __future__ import annotations

import functools
import re
from uuid import UUID

import pydantic
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from ninja import Header, Path, Router, Status
from ninja.errors import HttpError, ValidationError

from debugger import blobs, ingest
from debugger.schemas import (
    BATCH_MAX_BODY_BYTES,
    BATCH_MAX_LOGS,
    BATCH_MAX_PAYLOADS,
    BATCH_MAX_SPANS,
    BATCH_MAX_TRACES,
    MAX_SPANS_PER_TRACE,
    BatchOut,
    IngestOut,
    LogsIn,
    PayloadsIn,
    SessionListOut,
    SessionOut,
    TraceBatchIn,
    TracesIn,
    batch_over_limits,
)
from encryption_keys.envelope import EnvelopeError
from encryption_keys.error_reporting import answers_key_errors, problem_for
from konnect_admin.api import (
    DataPlaneTokenAuth,
    PersonalAccessTokenAuth,
    SystemAccountAccessTokenAuth,
    api_region,
)
from konnect_admin.problems import BadRequest, Problem, invalid_parameter, problem_response

INGEST_MAX_BODY_BYTES = 2 * 1024 * 1024
BLOB_MAX_BODY_BYTES = blobs.MAX_BLOB_BYTES
DECLARED_CONTENT_TYPE = re.compile(r"[\w!#$&^.+-]+/[\w!#$&^.+-]+(?: *; *[\w!#$&^.+-]+=[\w!#$&^.+\-\"]+)*", re.ASCII)


def refuse_large_body(request: HttpRequest, limit: int) -> None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BadRequest("Content-Length is not a number.", invalid_parameter(
            "Content-Length", "is not a number", rule="is_integer", source="header")) from None
    if length > limit:
        raise HttpError(413, f"The request body is {length} bytes; the limit is {limit} bytes.")


class DataPlaneIngestAuth(DataPlaneTokenAuth):
    """A data-plane token, used in its control plane's region, with a body under the limit (checked before parsing)."""

    def __init__(self, *, max_body_bytes: int):
        super().__init__()
        self.max_body_bytes = max_body_bytes

    def authenticate(self, request, token):
        data_plane_token = super().authenticate(request, token)
        if data_plane_token is None:
            return None
        region = api_region(request)
        if request.control_plane.region != region:
            raise HttpError(404, f"This control plane is in the {request.control_plane.region} region, not {region}.")
        refuse_large_body(request, self.max_body_bytes)
        return data_plane_token


class PersonalBlobAuth(PersonalAccessTokenAuth):
    def authenticate(self, request, token):
        access_token = super().authenticate(request, token)
        if access_token is not None:
            refuse_large_body(request, BLOB_MAX_BODY_BYTES)
        return access_token


class SystemAccountBlobAuth(SystemAccountAccessTokenAuth):
    def authenticate(self, request, token):
        access_token = super().authenticate(request, token)
        if access_token is not None:
            refuse_large_body(request, BLOB_MAX_BODY_BYTES)
        return access_token


ingest_router = Router(tags=["Debugger ingest"], auth=DataPlaneIngestAuth(max_body_bytes=INGEST_MAX_BODY_BYTES))
batch_auth = DataPlaneIngestAuth(max_body_bytes=BATCH_MAX_BODY_BYTES)
blob_router = Router(tags=["Blobs"], auth=[DataPlaneIngestAuth(max_body_bytes=BLOB_MAX_BODY_BYTES), PersonalBlobAuth(),
                                           SystemAccountBlobAuth()])


def _session_out(session) -> dict:
    return {
        "id": session.pk,
        "status": session.status,
        "sampling": {"kind": session.sampling_kind, "value": session.sampling_value},
        "max_samples": session.max_samples,
        "remaining_samples": ingest.remaining_samples(session),
        "capture": {
            "logs": session.capture_logs,
            "request_headers": session.capture_request_headers,
            "request_body": session.capture_request_body,
            "response_headers": session.capture_response_headers,
            "response_body": session.capture_response_body,
        },
        "started_at": session.started_at,
        "ends_at": session.ends_at,
    }


def _result_out(result: ingest.IngestResult) -> dict:
    return {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "dropped": result.dropped,
        "dropped_attributes": result.dropped_attributes,
        "session": _session_out(result.session),
    }


def ingest_problems(view):
    """Turn the ingest's refusals into problem+json (404 is handled API-wide)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except ingest.SessionClosed as closed:
            return problem_response(status=409, detail=str(closed), code=closed.code,
                                    session_status=closed.session.status)
        except IntegrityError:
            # Another request stored the same trace at the same moment; a retry reports it as a duplicate.
            return problem_response(status=409, detail="A concurrent request wrote the same data; retry.",
                                    code="concurrent_write", headers={"Retry-After": "1"})
        except EnvelopeError as refused:
            return problem_for(refused)
        except ingest.UnknownTraces as unknown:
            return problem_response(status=400, detail=str(unknown), invalid_parameters=[
                invalid_parameter(f"payloads.{index}.trace_id", "is not a trace of this debug session")
                for index in unknown.positions
            ])

    return wrapper


@ingest_router.get("/sessions", response=SessionListOut, summary="Debug sessions to sample now")
def sessions_to_sample(request):
    """The active sessions of the token's control plane. Pending sessions start when first fetched."""
    sessions = ingest.sessions_for_data_plane(control_plane=request.control_plane)
    return {"data": [_session_out(session) for session in sessions]}


@ingest_router.post("/sessions/{session_id}/traces", response={202: IngestOut}, summary="Post sampled traces")
@ingest_problems
def post_traces(request, session_id: UUID, payload: TracesIn):
    """Up to 100 traces with their spans, and optionally their payloads and logs, stored all or nothing.

    Known trace ids are skipped (safe to retry); traces past max_samples are dropped."""
    result = ingest.traces_ingest(control_plane=request.control_plane, session_id=session_id, traces=payload.traces)
    return Status(202, _result_out(result))


BATCH_LIMITS = (
    f"Limits per request: {BATCH_MAX_BODY_BYTES // (1024 * 1024)} MiB of body (else 413, before parsing); "
    f"{BATCH_MAX_TRACES} traces, {BATCH_MAX_SPANS} spans, {BATCH_MAX_PAYLOADS} payload captures, {BATCH_MAX_LOGS} "
    f"log lines in all (else 422, nothing stored); per trace {MAX_SPANS_PER_TRACE} spans, one payload of each kind."
)


def _batch_body_schema() -> dict:
    schema = TraceBatchIn.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)  # TraceIn and the rest are in the document's components already (post_traces)
    return schema


def _read_batch(request) -> TraceBatchIn:
    """The body, parsed and validated by pydantic-core straight from the bytes (no json.loads, no dict copy).

    Read from the stream, not `request.body`, which refuses anything over DATA_UPLOAD_MAX_MEMORY_SIZE: this
    endpoint's own limit is larger. Content-Length was checked before (DataPlaneIngestAuth); a body without one
    (chunked) is cut at the limit here."""
    content_type = (request.content_type or "").lower()
    if content_type != "application/json":
        raise HttpError(415, "This API only supports requests with `Content-Type: application/json`")
    body = request.read(BATCH_MAX_BODY_BYTES + 1)
    if len(body) > BATCH_MAX_BODY_BYTES:
        raise HttpError(413, f"The request body is over {BATCH_MAX_BODY_BYTES} bytes; the limit is "
                             f"{BATCH_MAX_BODY_BYTES} bytes.")
    try:
        return TraceBatchIn.model_validate_json(body)
    except pydantic.ValidationError as invalid:
        raise ValidationError([{**error, "loc": ("body", "payload", *error["loc"])}
                               for error in invalid.errors(include_url=False, include_input=False)]) from None


@ingest_router.post("/sessions/{session_id}/trace-batches", auth=batch_auth,
                    response={202: BatchOut, 400: Problem, 401: Problem, 404: Problem, 409: Problem, 413: Problem,
                              415: Problem, 422: Problem, 503: Problem},
                    summary="Post a batch of sampled traces", description=BATCH_LIMITS,
                    openapi_extra={
                        "x-konnect-max-body-bytes": BATCH_MAX_BODY_BYTES,
                        "requestBody": {"required": True, "content": {"application/json": {
                            "schema": _batch_body_schema()}}},
                    })
@ingest_problems
def post_trace_batch(request, session_id: UUID):
    """Many traces of one session with their spans, payload captures and logs, stored in one transaction, all or
    nothing (docs/debugger-ingest.md).

    Idempotent on trace id: a retried batch stores nothing twice and answers 202 with the traces counted as
    duplicates, even after the session completed. Traces past max_samples are dropped and listed."""
    return trace_batch(request, session_id)


def trace_batch(request, session_id: UUID, store: ingest.CaptureStore = ingest.ENCRYPTED_STORE):
    """The batch endpoint's work (the benchmark serves it over plaintext twins too, with `store`)."""
    payload = _read_batch(request)
    over = batch_over_limits(payload)
    if over:
        return problem_response(
            status=422, detail="; ".join(f"this batch has {count} {what}, the limit is {limit} per request"
                                         for what, count, limit in over) + ". Nothing was stored: split the batch.",
            code="batch_too_large",
            invalid_parameters=[invalid_parameter(what, f"must not have more than {limit} items in one request",
                                                  rule="max_items", maximum=limit) for what, _, limit in over],
        )
    result = ingest.traces_ingest(control_plane=request.control_plane, session_id=session_id, traces=payload.traces,
                                  store=store)
    return Status(202, {**_result_out(result), "dropped_trace_ids": result.dropped_trace_ids})


@ingest_router.post("/sessions/{session_id}/payloads", response={202: IngestOut},
                    summary="Post payload captures of stored traces")
@ingest_problems
def post_payloads(request, session_id: UUID, payload: PayloadsIn):
    result = ingest.payloads_ingest(control_plane=request.control_plane, session_id=session_id,
                                    payloads=payload.payloads)
    return Status(202, _result_out(result))


@ingest_router.post("/sessions/{session_id}/logs", response={202: IngestOut}, summary="Post request logs")
@ingest_problems
def post_logs(request, session_id: UUID, payload: LogsIn):
    result = ingest.logs_ingest(control_plane=request.control_plane, session_id=session_id, logs=payload.logs)
    return Status(202, _result_out(result))


@ingest_router.post("/sessions/{session_id}/done", response=SessionOut, summary="Mark a session done")
def finish_session(request, session_id: UUID):
    session = ingest.session_finish(control_plane=request.control_plane, session_id=session_id)
    return _session_out(session)


# --- blobs ---------------------------------------------------------------------------------------------------


def _blob_caller(request) -> dict:
    control_plane = getattr(request, "control_plane", None)
    if control_plane is not None:
        return {"organization": control_plane.organization, "control_plane": control_plane}
    return {"organization": request.organization, "user": request.user}


def _blob_key(blob_id: str) -> str:
    if not blobs.BLOB_ID.fullmatch(blob_id):
        reason = "must be 1–200 characters: letters, digits, ':', '.', '_' and '-'"
        raise BadRequest(f"blobId {reason}.", invalid_parameter("blobId", reason, rule="matches_regex", source="path"))
    return blob_id


BLOB_ID = Path(..., description="Id of the Blob")
RAW_BLOB = {"schema": {"type": "string", "format": "binary"}}


@blob_router.put("/blobs/{blobId}", response={202: None, 400: Problem, 401: Problem, 403: Problem, 404: Problem,
                                              413: Problem, 503: Problem},
                 operation_id="put-blob", summary="Store a raw blob",
                 openapi_extra={"requestBody": {"description": "Raw blob data", "required": True,
                                                "content": {"*/*": RAW_BLOB}}})
@answers_key_errors
def put_blob(
    request,
    blobId: str = BLOB_ID,  # noqa: N803 - the spec's parameter name
    expires_in: int = Header(blobs.DEFAULT_TTL_SECONDS, alias="X-Konnect-Expires-In", ge=1,
                             le=blobs.MAX_TTL_SECONDS),
    cmek_id: str = Header("default", alias="X-Konnect-CMEK-Id", pattern="^default$"),
):
    """Store the request body as a blob (encrypted under the organization's key), for `X-Konnect-Expires-In` seconds."""
    blobs.blob_put(
        region=api_region(request), key=_blob_key(blobId), data=request.body,
        content_type=request.META.get("CONTENT_TYPE") or "application/octet-stream",
        ttl_seconds=expires_in, **_blob_caller(request),
    )
    return Status(202, None)


@blob_router.get("/blobs/{blobId}", response={200: None, 400: Problem, 401: Problem, 403: Problem, 404: Problem,
                                              409: Problem, 503: Problem},
                 operation_id="get-blob", summary="Get a raw blob",
                 openapi_extra={"responses": {200: {"description": "The raw blob (always an opaque download)",
                                                    "content": {"application/octet-stream": RAW_BLOB}}}})
@answers_key_errors
def get_blob(request, blobId: str = BLOB_ID):  # noqa: N803 - the spec's parameter name
    """The decrypted blob, for the uploader's scope only (see debugger/blobs.py), as an opaque download.

    Always `application/octet-stream`, `Content-Disposition: attachment`, `X-Content-Type-Options: nosniff`
    and `Cache-Control: no-store`: a stored `text/html` or `image/svg+xml` never renders in a browser. The type
    the uploader declared is metadata, in `X-Konnect-Blob-Content-Type`."""
    blob = blobs.blob_get(region=api_region(request), key=_blob_key(blobId), **_blob_caller(request))
    response = HttpResponse(blob.data.reveal(), content_type="application/octet-stream")
    response["Content-Disposition"] = "attachment"
    response["X-Content-Type-Options"] = "nosniff"
    if DECLARED_CONTENT_TYPE.fullmatch(blob.content_type):
        response["X-Konnect-Blob-Content-Type"] = blob.content_type
    add_never_cache_headers(response)
    return response
