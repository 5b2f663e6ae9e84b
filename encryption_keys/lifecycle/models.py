"""A key replacement's re-wrap job, and the data keys it could not re-wrap.

Registered through `encryption_keys.models` (it imports these classes), so they live in the
encryption_keys app and its migrations.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from encryption_keys.envelope import EnvelopeError
from konnect_admin.models import Organization, Region


class RewrapState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    COMPLETED_WITH_FAILURES = "completed_with_failures", "Completed with failures"
    FAILED = "failed", "Interrupted"


class RewrapJob(models.Model):
    """Moving every data key of one organization and region from `old_key_ref` to `new_key_ref`.

    `total` is the number of data keys found under the old key when the (latest) run started, `done`
    those re-wrapped so far, `failed` those the latest run could not re-wrap (see `failures`).
    """

    UNFINISHED = (RewrapState.PENDING, RewrapState.RUNNING)

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="rewrap_jobs")
    region = models.CharField(max_length=2, choices=Region)
    old_key_ref = models.CharField(max_length=2048)
    new_key_ref = models.CharField(max_length=2048)
    state = models.CharField(max_length=24, choices=RewrapState, default=RewrapState.PENDING)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, help_text="Why the latest run stopped early.")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The worker running the job holds it until `lease_expires_at`, renewing as it goes; one whose process
    # died stops renewing, and once the lease lapses another worker may take the job over.
    lease_owner = models.CharField(max_length=128, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "encryption_keys"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "region", "-created_at"], name="rewrapjob_org_region_created"),
        ]

    def __str__(self):
        return f"Re-wrap {self.get_region_display()} #{self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.state not in self.UNFINISHED

    @property
    def processed(self) -> int:
        return self.done + self.failed

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if self.is_finished else 0
        return min(100, round(100 * self.processed / self.total))

    @property
    def badge(self) -> str:
        """The CSS class of the state badge."""
        return {RewrapState.COMPLETED: "ok", RewrapState.COMPLETED_WITH_FAILURES: "warn",
                RewrapState.FAILED: "fail"}.get(self.state, "")


class RewrapFailure(models.Model):
    """A data key a re-wrap run could not move: it stays under the old key, readable by nobody while
    that key is revoked, and is retried by the next run of the job."""

    job = models.ForeignKey(RewrapJob, on_delete=models.CASCADE, related_name="failures")
    data_key = models.ForeignKey("encryption_keys.DataKey", on_delete=models.CASCADE, related_name="+")
    code = models.CharField(max_length=32, help_text="The stable error code (key_disabled, …).")
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "encryption_keys"
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["job", "data_key"], name="one_failure_per_job_and_data_key")]

    def __str__(self):
        return f"{self.data_key_id}: {self.code}"

    @property
    def error(self) -> EnvelopeError:
        """The typed error, for its title and what the customer can do."""
        return EnvelopeError(self.code, key_ref=self.job.old_key_ref, detail=self.detail)
