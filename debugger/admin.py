"""The platform operator's view of the Debugger: metadata only.

Payload URLs, headers and bodies, log messages and blob contents are encrypted customer data: they are
never listed, shown or editable here (not even as ciphertext). Deleting goes through the app or the
retention purge, which crypto-shred first.
"""

import json

from django.contrib import admin

from debugger.models import Blob, DebugSession, PayloadCapture, RequestLog, Span, Trace
from konnect_admin.admin import ReadOnlyAdmin


@admin.register(DebugSession)
class DebugSessionAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "control_plane", "status", "sampling_kind", "created_at", "retain_until"]
    list_filter = ["status", "sampling_kind"]
    search_fields = ["id", "name", "control_plane__name"]
    fields = ["id", "name", "control_plane", "created_by", "status", "sampling_kind", "sampling_value",
              "duration_seconds", "max_samples", "capture_logs", "capture_request_headers", "capture_request_body",
              "capture_response_headers", "capture_response_body", "created_at", "started_at", "ends_at",
              "ended_at", "retain_until"]


@admin.register(Trace)
class TraceAdmin(ReadOnlyAdmin):
    list_display = ["trace_id", "session", "method", "status_code", "latency_total_ms", "start_time"]
    list_filter = ["method", "status_code"]
    search_fields = ["trace_id"]
    fields = ["session", "trace_id", "start_time", "method", "status_code", "latency_total_ms",
              "latency_upstream_ms", "latency_kong_ms", "route_id", "service_id", "consumer_id", "created_at"]


@admin.register(Span)
class SpanAdmin(ReadOnlyAdmin):
    list_display = ["name", "trace", "span_id", "start_ns", "end_ns"]
    search_fields = ["span_id", "trace__trace_id"]
    fields = ["trace", "span_id", "parent_span_id", "name", "start_ns", "end_ns", "shown_attributes"]
    readonly_fields = ["shown_attributes"]

    @admin.display(description="attributes")
    def shown_attributes(self, span):
        """Through the span-attribute denylist again (debugger/attributes.py), never the raw column."""
        return json.dumps(span.shown_attributes, indent=2, sort_keys=True)


@admin.register(PayloadCapture)
class PayloadCaptureAdmin(ReadOnlyAdmin):
    list_display = ["id", "trace", "kind", "body_size", "expires_at"]
    list_filter = ["kind"]
    fields = ["id", "trace", "kind", "body_size", "created_at", "expires_at"]  # url, headers, body: never


@admin.register(RequestLog)
class RequestLogAdmin(ReadOnlyAdmin):
    list_display = ["id", "session", "level", "time", "trace_id", "span_id"]
    list_filter = ["level"]
    fields = ["id", "session", "level", "time", "trace_id", "span_id"]  # message: never


@admin.register(Blob)
class BlobAdmin(ReadOnlyAdmin):
    list_display = ["key", "organization", "region", "control_plane", "size", "expires_at"]
    fields = ["id", "key", "organization", "region", "control_plane", "content_type", "size", "created_at",
              "expires_at"]  # data: never
