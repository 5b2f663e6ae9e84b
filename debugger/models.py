"""Debug sessions and what the data planes send for them.

Trace and span metadata stay unencrypted so pages can filter on them. Payload captures (URL, headers,
body), request-log messages and blobs are envelope-encrypted under a data key per organization, region,
purpose and debug session, so one session can be crypto-shredded alone. A session's scope reference names
its control plane too (`<control plane id>/<session id>`): re-parented to another control plane, even of
the same organization, its values read `integrity` (docs/envelope.md, "Scope references").
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from debugger.attributes import NAME_MAX_LENGTH
from debugger.attributes import scrub as scrub_attributes
from encryption_keys.fields import EncryptedBinaryField, EncryptedJSONField, EncryptedTextField
from encryption_keys.keyring import EncryptionScope, control_plane_scope_ref
from encryption_keys.models import Purpose
from konnect_admin.models import ControlPlane, Organization, Region

MIN_DURATION_SECONDS = 10
MAX_DURATION_SECONDS = 30 * 60
DEFAULT_MAX_SAMPLES = 100
MAX_SAMPLES_LIMIT = 1000
PAYLOAD_RETENTION = timedelta(days=3)


class SessionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    TIMED_OUT = "timed_out", "Timed out"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (SessionStatus.PENDING, SessionStatus.IN_PROGRESS)


class SamplingKind(models.TextChoices):
    NONE = "none", "Every request"
    ROUTE = "route", "One route"
    SERVICE = "service", "One service"
    EXPRESSION = "expression", "Expression"


class DebugSession(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    control_plane = models.ForeignKey(ControlPlane, on_delete=models.CASCADE, related_name="debug_sessions")
    name = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    status = models.CharField(max_length=16, choices=SessionStatus, default=SessionStatus.PENDING)
    sampling_kind = models.CharField(max_length=16, choices=SamplingKind, default=SamplingKind.NONE)
    sampling_value = models.CharField(max_length=1024, blank=True,
                                      help_text="Route or service id/name, or a sampling expression.")
    duration_seconds = models.PositiveIntegerField(
        validators=[MinValueValidator(MIN_DURATION_SECONDS), MaxValueValidator(MAX_DURATION_SECONDS)]
    )
    max_samples = models.PositiveIntegerField(default=DEFAULT_MAX_SAMPLES)
    samples_taken = models.PositiveIntegerField(
        default=0, editable=False,
        help_text="Traces stored so far: raised by ingest with one conditional UPDATE (debugger/ingest.py).",
    )
    capture_logs = models.BooleanField(default=True)
    capture_request_headers = models.BooleanField(default=True)
    capture_request_body = models.BooleanField(default=True)
    capture_response_headers = models.BooleanField(default=True)
    capture_response_body = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(help_text="When sampling stops (counted from the start once a data plane starts it).")
    ended_at = models.DateTimeField(null=True, blank=True)
    retain_until = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["control_plane", "-created_at"]),
            models.Index(fields=["status", "ends_at"]),
        ]

    def __str__(self):
        return self.name or f"Debug session {str(self.pk)[:8]}"

    @property
    def organization(self) -> Organization:
        return self.control_plane.organization

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES and self.ends_at > timezone.now()

    @property
    def display_status(self) -> str:
        """The status as it is now: an active session past its end has timed out even before the next sweep."""
        if self.status in ACTIVE_STATUSES and self.ends_at <= timezone.now():
            return SessionStatus.TIMED_OUT
        return self.status

    def get_display_status_display(self) -> str:
        return SessionStatus(self.display_status).label

    @property
    def sampling_label(self) -> str:
        if self.sampling_kind == SamplingKind.NONE:
            return "every request"
        return f"{SamplingKind(self.sampling_kind).label.lower()}: {self.sampling_value}"

    @property
    def scope_ref(self) -> str:
        """The scope reference of the session's data keys (payloads and logs): control plane and session."""
        return control_plane_scope_ref(self.control_plane_id, self.pk)

    def scope(self, purpose: str) -> EncryptionScope:
        """Built once per purpose and parents on this instance, then reused while those stay as they are: a page
        reveals a value of each of its 50 rows of one session, and each reveal asks twice (for the data key's
        scope, then for the AAD)."""
        control_plane = self.control_plane
        identity = (purpose, self.pk, self.control_plane_id, control_plane.organization_id, control_plane.region)
        built = self.__dict__.get("_built_scope")
        if built is None or built[0] != identity:
            built = identity, EncryptionScope(control_plane.organization_id, control_plane.region, purpose,
                                              self.scope_ref)
            self.__dict__["_built_scope"] = built
        return built[1]


class Trace(models.Model):
    """One sampled request: metadata only, kept unencrypted for filtering."""

    session = models.ForeignKey(DebugSession, on_delete=models.CASCADE, related_name="traces")
    trace_id = models.CharField(max_length=32, help_text="W3C trace id, 32 hex digits.")
    start_time = models.DateTimeField()
    method = models.CharField(max_length=16)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_total_ms = models.FloatField(null=True, blank=True)
    latency_upstream_ms = models.FloatField(null=True, blank=True)
    latency_kong_ms = models.FloatField(null=True, blank=True)
    route_id = models.CharField(max_length=64, blank=True)
    service_id = models.CharField(max_length=64, blank=True)
    consumer_id = models.CharField(max_length=64, blank=True)
    # Named by the trace's span attributes (debugger/attributes.py, NAME_ATTRIBUTES), stored at ingest so the
    # traces table reads them with the trace rather than searching its spans on every page; blank: unnamed.
    # The database default lets servers still running the previous release insert traces during a deploy.
    route_name = models.CharField(max_length=NAME_MAX_LENGTH, blank=True, default="", db_default="")
    service_name = models.CharField(max_length=NAME_MAX_LENGTH, blank=True, default="", db_default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-start_time", "-id"]
        constraints = [models.UniqueConstraint(fields=["session", "trace_id"], name="unique_trace_per_session")]
        # The traces table reads newest first with a (start_time, id) cursor, whatever the filter: each
        # filter's index ends with the sort, so a page is an index range scan, not a sort of the session.
        indexes = [
            models.Index(fields=["session", "-start_time", "-id"], name="debugger_trace_keyset"),
            models.Index(fields=["session", "status_code", "-start_time", "-id"], name="debugger_trace_status"),
            models.Index(fields=["session", "route_id", "-start_time", "-id"], name="debugger_trace_route"),
            models.Index(fields=["session", "service_id", "-start_time", "-id"], name="debugger_trace_service"),
        ]

    def __str__(self):
        return self.trace_id

    @property
    def control_plane(self) -> ControlPlane:
        return self.session.control_plane


class Span(models.Model):
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="spans")
    span_id = models.CharField(max_length=16)
    parent_span_id = models.CharField(max_length=16, blank=True)
    name = models.CharField(max_length=200)
    start_ns = models.BigIntegerField()
    end_ns = models.BigIntegerField()
    attributes = models.JSONField(default=dict, blank=True)
    # The partition key on PostgreSQL (debugger/partitions.py); a database default, so a COPY may leave it out.
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["start_ns", "id"]
        constraints = [models.UniqueConstraint(fields=["trace", "span_id"], name="unique_span_per_trace")]

    def __str__(self):
        return self.name

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    @property
    def shown_attributes(self) -> dict:
        """The attributes with today's denylist applied again, for rows stored before a rule existed."""
        return scrub_attributes(self.attributes or {})[0]


class PayloadKind(models.TextChoices):
    CLIENT_REQUEST = "client_request", "Client request"
    UPSTREAM_REQUEST = "upstream_request", "Upstream request"
    UPSTREAM_RESPONSE = "upstream_response", "Upstream response"
    CLIENT_RESPONSE = "client_response", "Client response"


class PayloadCapture(models.Model):
    """Headers and body of one request or response of a trace; all of it encrypted, kept 3 days."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="payloads")
    kind = models.CharField(max_length=24, choices=PayloadKind)
    url = EncryptedTextField(null=True)
    headers = EncryptedJSONField(null=True)
    body = EncryptedBinaryField(null=True)
    body_size = models.PositiveIntegerField(default=0, help_text="Bytes of the captured body.")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["trace", "kind"]
        constraints = [models.UniqueConstraint(fields=["trace", "kind"], name="unique_payload_kind_per_trace")]

    def __str__(self):
        return f"{self.get_kind_display()} of {self.trace_id}"

    encryption_scope_related = ("trace__session__control_plane",)  # what encryption_scope() reads

    def encryption_scope(self) -> EncryptionScope:
        return self.trace.session.scope(Purpose.DEBUGGER_PAYLOAD)


class LogLevel(models.TextChoices):
    """nginx / Kong log levels, most severe last."""

    DEBUG = "debug", "debug"
    INFO = "info", "info"
    NOTICE = "notice", "notice"
    WARN = "warn", "warn"
    ERROR = "error", "error"
    CRIT = "crit", "crit"
    ALERT = "alert", "alert"
    EMERG = "emerg", "emerg"


class RequestLog(models.Model):
    """One log line of a sampled request; the message is encrypted."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(DebugSession, on_delete=models.CASCADE, related_name="logs")
    trace_id = models.CharField(max_length=32, blank=True)
    span_id = models.CharField(max_length=16, blank=True)
    time = models.DateTimeField()
    level = models.CharField(max_length=8, choices=LogLevel)
    message = EncryptedTextField()
    # When it was stored (`time` is the data plane's clock): the partition key on PostgreSQL.
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["time", "id"]
        indexes = [
            models.Index(fields=["session", "time"]),
            models.Index(fields=["session", "trace_id"]),
        ]

    def __str__(self):
        return f"{self.level} log of {self.trace_id or 'session'}"

    @property
    def control_plane(self) -> ControlPlane:
        return self.session.control_plane

    encryption_scope_related = ("session__control_plane",)  # what encryption_scope() reads

    def encryption_scope(self) -> EncryptionScope:
        return self.session.scope(Purpose.DEBUGGER_LOG)


class Blob(models.Model):
    """A raw payload stored through Konnect's blob API (`PUT /v0/blobs/{blobId}`), encrypted, with a TTL."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    region = models.CharField(max_length=2, choices=Region)
    control_plane = models.ForeignKey(ControlPlane, null=True, blank=True, on_delete=models.CASCADE,
                                      related_name="+", help_text="Set when a data plane stored it.")
    key = models.CharField(max_length=200, help_text="The blobId of the API.")
    content_type = models.CharField(max_length=255, blank=True)
    size = models.PositiveIntegerField(default=0)
    data = EncryptedBinaryField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["organization", "region", "key"], name="unique_blob_key")]

    def __str__(self):
        return self.key

    def encryption_scope(self) -> EncryptionScope:
        owner = self.control_plane_id or self.organization_id
        return EncryptionScope(self.organization_id, self.region, Purpose.DEBUGGER_PAYLOAD, f"blobs:{owner}")
