"""The CMEK link and its health, the data keys it wraps, and the log of every KMS call."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from encryption_keys.providers import key_identity
from konnect_admin.models import Organization, Region


class Purpose(models.TextChoices):
    DEBUGGER_PAYLOAD = "debugger.payload", "Debugger payload captures"
    DEBUGGER_LOG = "debugger.log", "Debugger request logs"
    VAULT_SECRET = "vault.secret", "Config Store secrets"


class KeyStatus(models.TextChoices):
    HEALTHY = "healthy", "Healthy"
    ROTATION_DISABLED = "rotation_disabled", "Automatic rotation off"
    DISABLED = "disabled", "Disabled"
    PENDING_DELETION = "pending_deletion", "Pending deletion"
    ACCESS_DENIED = "access_denied", "Access denied"
    NOT_FOUND = "not_found", "Not found"
    UNREACHABLE = "unreachable", "KMS unreachable"


class EncryptionKey(models.Model):
    """An organization's customer-managed key for one Konnect region (API id: always `default`)."""

    API_ID = "default"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="encryption_keys")
    region = models.CharField(max_length=2, choices=Region)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=1000, blank=True)
    key_arn = models.CharField(max_length=2048)
    # Which key this is however addressed (KeyRef.identity, by the key's provider): one link per key in the installation, so
    # another organization can never link it, nor a multi-region sibling of it. Kept in step by save().
    key_identity = models.CharField(max_length=2048, editable=False)
    status = models.CharField(max_length=24, choices=KeyStatus, default=KeyStatus.HEALTHY)
    deletion_date = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    # Snapshot of DescribeKey / GetKeyRotationStatus: key_spec, key_usage, multi_region, replica_regions, rotation_enabled
    kms_metadata = models.JSONField(default=dict, blank=True)
    linked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    linked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "region"], name="one_cmek_per_org_region"),
            models.UniqueConstraint(fields=["key_identity"], name="one_link_per_kms_key"),
        ]
        ordering = ["region"]

    def __str__(self):
        return f"{self.name} ({self.get_region_display()})"

    def save(self, *args, **kwargs):
        self.key_identity = key_identity(self.key_arn)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "key_arn" in update_fields:
            kwargs["update_fields"] = {*update_fields, "key_identity"}
        super().save(*args, **kwargs)

    @property
    def is_usable(self) -> bool:
        return self.status in (KeyStatus.HEALTHY, KeyStatus.ROTATION_DISABLED, KeyStatus.UNREACHABLE)


class KeyStatusChange(models.Model):
    """Status history of a linked key, written whenever a check finds a different status."""

    key = models.ForeignKey(EncryptionKey, on_delete=models.CASCADE, related_name="status_changes")
    status = models.CharField(max_length=24, choices=KeyStatus)
    previous_status = models.CharField(max_length=24, choices=KeyStatus, blank=True)
    detail = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.previous_status or '—'} → {self.status}"


class PlatformKeyHealth(models.Model):
    """The last sweep's reading of one platform key (settings.PLATFORM_KMS_KEYS): what the operator watches.
    Organizations without a linked key depend on it; nothing of a tenant's is here."""

    region = models.CharField(max_length=2, choices=Region, unique=True)
    key_arn = models.CharField(max_length=2048)
    status = models.CharField(max_length=24, choices=KeyStatus, default=KeyStatus.HEALTHY)
    deletion_date = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_checked_at = models.DateTimeField()
    changed_at = models.DateTimeField(help_text="When the status last changed (or was first read).")

    class Meta:
        ordering = ["region"]
        verbose_name = "platform key health"
        verbose_name_plural = "platform key health"

    def __str__(self):
        return f"{self.get_region_display()}: {self.get_status_display()}"


class DataKey(models.Model):
    """One AES-256 data key, stored only wrapped by a KMS key. One per scope and period."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="data_keys")
    region = models.CharField(max_length=2, choices=Region)
    purpose = models.CharField(max_length=32, choices=Purpose)
    scope_ref = models.CharField(
        max_length=100,
        help_text="<control plane id>/<debug session or config store id>, or blobs:<control plane or org id>.",
    )
    wrapping_key_arn = models.CharField(max_length=2048)
    wrapped = models.BinaryField(null=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    encrypt_until = models.DateTimeField(help_text="New values stop using this key after this time.")
    usage_count = models.BigIntegerField(default=0)
    retired_at = models.DateTimeField(null=True, blank=True, help_text="No new values from then on.")
    shredded_at = models.DateTimeField(null=True, blank=True)
    rewrapped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "region", "purpose", "scope_ref"]),
            models.Index(fields=["wrapping_key_arn"]),
        ]

    def __str__(self):
        return f"{self.purpose} {self.scope_ref} ({self.id})"

    @property
    def is_shredded(self) -> bool:
        return self.shredded_at is not None

    def encryption_context(self) -> dict[str, str]:
        return {
            "konnect:org": str(self.organization_id),
            "konnect:region": self.region,
            "konnect:purpose": self.purpose,
            "konnect:datakey": str(self.id),
        }


class KmsCall(models.Model):
    """One call to KMS: what the customer sees in CloudTrail, tied by the encryption context."""

    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    key_arn = models.CharField(max_length=2048)
    aws_region = models.CharField(max_length=32, blank=True, help_text="The region that answered (failover).")
    operation = models.CharField(max_length=40)
    encryption_context = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=32, help_text="`ok` or an error code.")
    latency_ms = models.FloatField()
    request_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "key_arn", "-created_at"])]

    def __str__(self):
        return f"{self.operation} {self.outcome}"


from encryption_keys.lifecycle.models import RewrapFailure, RewrapJob  # noqa: E402,F401
