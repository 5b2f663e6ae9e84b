"""Config Stores and their secrets (values encrypted under the control plane's vault key), Vault entities,
which key protects a control plane's vault, and the log of data-plane secret resolutions.

A store's data keys are scoped to `<control plane id>/<store id>`: a store re-parented to another control plane,
even of the same organization, does not resolve there (`integrity`; docs/envelope.md, "Scope references")."""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.core.validators import MinLengthValidator, RegexValidator
from django.db import models

from encryption_keys.envelope import DecryptionError, EncryptionUnavailable, EnvelopeError, ErrorCode
from encryption_keys.fields import EncryptedTextField, SealedValue
from encryption_keys.keyring import EncryptionScope, control_plane_scope_ref
from encryption_keys.models import EncryptionKey, Purpose
from konnect_admin.models import ControlPlane, DataPlaneToken

STORE_NAME_MAX = 100
SECRET_KEY_MAX = 512
SECRET_VALUE_MAX = 5120
VAULT_NAME = "konnect"
# Kong's vault prefix rule: lowercase letters, digits and dashes, starting with a letter.
PREFIX_PATTERN = r"^[a-z][a-z0-9-]*[a-z0-9]$"
# Names of Kong's bundled vaults: `{vault://env/…}` means the env vault, never an entity.
RESERVED_PREFIXES = frozenset({"env", "aws", "gcp", "hcv", "azure", "konnect"})
CONTROL_CHARACTERS_PATTERN = r"[\x00-\x1f\x7f]"
CONTROL_CHARACTERS = re.compile(CONTROL_CHARACTERS_PATTERN)
no_control_characters = RegexValidator(CONTROL_CHARACTERS_PATTERN, "Control characters are not allowed.",
                                       inverse_match=True)
# A config store key travels unescaped inside `{vault://<prefix>/<key>}`, which Kong parses as a URL: Konnect's spec
# bounds it at 1–512 characters, and only URL-safe characters keep it one unambiguous path. Letters, digits, `.`,
# `_` and `-`, in `/`-separated segments (`db/primary/password`); no spaces, `?`, `#`, `%` or empty segments.
CONFIG_STORE_KEY_PATTERN = r"^[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*\Z"
CONFIG_STORE_KEY_RULE = ("Use letters, digits, '.', '_' and '-', in segments separated by '/' "
                   "(e.g. stripe-api-key or db/primary/password).")
valid_secret_key = RegexValidator(CONFIG_STORE_KEY_PATTERN, CONFIG_STORE_KEY_RULE)


class ConfigStore(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    control_plane = models.ForeignKey(ControlPlane, on_delete=models.CASCADE, related_name="config_stores")
    name = models.CharField(max_length=STORE_NAME_MAX, validators=[MinLengthValidator(1), no_control_characters])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["control_plane", "created_at", "id"])]

    def __str__(self):
        return self.name

    @property
    def organization(self):
        return self.control_plane.organization

    @property
    def scope_ref(self) -> str:
        """The scope reference of the store's data keys: control plane and store."""
        return control_plane_scope_ref(self.control_plane_id, self.pk)


class Secret(models.Model):
    """A write-only secret: its value is sealed under the config store's DEK and only a data plane resolves it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    store = models.ForeignKey(ConfigStore, on_delete=models.CASCADE, related_name="secrets")
    key = models.CharField(max_length=SECRET_KEY_MAX, validators=[MinLengthValidator(1), valid_secret_key])
    value = EncryptedTextField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["store", "key"], name="vault_secret_key_unique_per_store")]

    def __str__(self):
        return self.key

    @property
    def control_plane(self):
        return self.store.control_plane

    @property
    def data_key_id(self) -> uuid.UUID | None:
        """The DEK the stored value is sealed under (its DataKey row holds the wrapping key ARN)."""
        if not isinstance(self.value, SealedValue):
            return None
        try:
            return self.value.data_key_id
        except DecryptionError:
            return None

    encryption_scope_related = ("store__control_plane",)  # what encryption_scope() reads

    def encryption_scope(self) -> EncryptionScope:
        """Who the value belongs to: no query once `store__control_plane` is loaded (select_related)."""
        control_plane = self.store.control_plane
        return EncryptionScope(control_plane.organization_id, control_plane.region, Purpose.VAULT_SECRET.value,
                               self.store.scope_ref)

    def encryption_wrapping_key(self) -> str | None:
        """Writes only: the KMS key new DEKs of this store are wrapped with (None: the keyring's choice)."""
        return VaultProtection.for_control_plane(self.store.control_plane).wrapping_key_override()


class Vault(models.Model):
    """Kong's Vault entity of type `konnect`: `{vault://<prefix>/<key>}` reads secrets of its config store."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    control_plane = models.ForeignKey(ControlPlane, on_delete=models.CASCADE, related_name="vaults")
    name = models.CharField(max_length=32, default=VAULT_NAME, editable=False)
    prefix = models.CharField(
        max_length=64,
        validators=[RegexValidator(PREFIX_PATTERN, "Use lowercase letters, digits and dashes; start with a letter.")],
    )
    description = models.CharField(max_length=1000, blank=True)
    config_store = models.ForeignKey(
        ConfigStore, null=True, on_delete=models.SET_NULL, related_name="vaults",
        help_text="config.config_store_id; empty when the config store was deleted.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["prefix"]
        constraints = [models.UniqueConstraint(fields=["control_plane", "prefix"], name="vault_prefix_unique_per_cp")]

    def __str__(self):
        return self.prefix

    @property
    def config(self) -> dict:
        return {"config_store_id": str(self.config_store_id) if self.config_store_id else None}


class VaultProtection(models.Model):
    """Which KMS key wraps a control plane's vault DEKs, decided when the control plane is created.

    As in Konnect, the organization's CMEK protects the vault only if it was linked before the control plane
    was created; otherwise the platform key does, until an Org Admin migrates it ("Protect with CMEK").
    """

    control_plane = models.OneToOneField(
        ControlPlane, on_delete=models.CASCADE, primary_key=True, related_name="vault_protection"
    )
    under_cmek = models.BooleanField()
    decided_at = models.DateTimeField(auto_now_add=True)
    migrated_at = models.DateTimeField(null=True, blank=True)
    migrated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")

    class Meta:
        verbose_name_plural = "vault protections"

    def __str__(self):
        return f"{self.control_plane}: {'CMEK' if self.under_cmek else 'platform key'}"

    @classmethod
    def decide(cls, control_plane: ControlPlane) -> VaultProtection:
        """Record the decision for a new control plane: under the CMEK iff one is linked for its region now."""
        linked = EncryptionKey.objects.filter(
            organization_id=control_plane.organization_id, region=control_plane.region
        ).exists()
        protection, _ = cls.objects.get_or_create(control_plane=control_plane, defaults={"under_cmek": linked})
        return protection

    @classmethod
    def for_control_plane(cls, control_plane: ControlPlane) -> VaultProtection:
        """The recorded decision; for a control plane that has none (created by raw SQL or bulk), infer it
        from the timestamps: the CMEK protects it only if it was linked before the control plane was created."""
        protection = cls.objects.filter(control_plane=control_plane).first()
        if protection is not None:
            return protection
        linked_at = EncryptionKey.objects.filter(
            organization_id=control_plane.organization_id, region=control_plane.region
        ).values_list("created_at", flat=True).first()
        under_cmek = linked_at is not None and linked_at < control_plane.created_at
        protection, _ = cls.objects.get_or_create(control_plane=control_plane, defaults={"under_cmek": under_cmek})
        return protection

    def wrapping_key_override(self) -> str | None:
        """None lets the keyring choose (CMEK if linked, else platform); the platform key when not under CMEK."""
        if self.under_cmek:
            return None
        region = self.control_plane.region
        platform = settings.PLATFORM_KMS_KEYS.get(region)
        if not platform:  # fail closed: never fall through to a key this control plane is not under
            raise EncryptionUnavailable(
                ErrorCode.KMS_UNAVAILABLE, detail=f"no platform KMS key configured for region {region!r}"
            )
        return platform


class SecretResolution(models.Model):
    """One reference a data plane asked to resolve, and the outcome (`ok` or an error code). Never the value."""

    control_plane = models.ForeignKey(ControlPlane, on_delete=models.CASCADE, related_name="+")
    token = models.ForeignKey(DataPlaneToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reference = models.CharField(max_length=1100)
    outcome = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["control_plane", "-created_at"])]

    def __str__(self):
        return f"{self.reference} → {self.outcome}"


class ProtectionState(models.TextChoices):
    PENDING = "pending", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Stopped"


class ProtectionJob(models.Model):
    """One "Protect with CMEK" run of a control plane's vault, done by a task worker (vault.tasks).

    At most one is unfinished per control plane (a partial unique constraint): a second submit finds it instead of
    starting another. The worker running it holds a lease (`lease_owner` until `lease_expires_at`, renewed as data
    keys move); a job whose worker died is handed to a worker again by the next submit. `rewrapped` and `fallbacks`
    count data keys, never anything they protect.
    """

    UNFINISHED = (ProtectionState.PENDING, ProtectionState.RUNNING)

    control_plane = models.ForeignKey(ControlPlane, on_delete=models.CASCADE, related_name="protection_jobs")
    key_ref = models.CharField(max_length=2048, help_text="The CMEK linked when the job was submitted.")
    state = models.CharField(max_length=16, choices=ProtectionState, default=ProtectionState.PENDING)
    pending = models.PositiveIntegerField(default=0, help_text="Data keys not under the CMEK when submitted.")
    rewrapped = models.PositiveIntegerField(default=0)
    fallbacks = models.PositiveIntegerField(default=0, help_text="Re-wrapped by Decrypt + Encrypt.")
    error_code = models.CharField(max_length=32, blank=True, help_text="The stable error code that stopped it.")
    last_error = models.CharField(max_length=500, blank=True, help_text="Why it stopped, for people.")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=128, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["control_plane"], condition=models.Q(state__in=["pending", "running"]),
                                    name="one_unfinished_protection_job_per_control_plane"),
        ]

    def __str__(self):
        return f"Protect with CMEK #{self.pk}: {self.control_plane}"

    @property
    def is_finished(self) -> bool:
        return self.state not in self.UNFINISHED

    @property
    def percent(self) -> int:
        if self.is_finished:
            return 100
        return min(100, round(100 * self.rewrapped / self.pending)) if self.pending else 0

    @property
    def error(self) -> EnvelopeError | None:
        """The typed KMS error that stopped the job (title, message, whether a retry helps); None for any other."""
        if self.error_code not in ErrorCode:
            return None
        return EnvelopeError(self.error_code, key_ref=self.key_ref)
