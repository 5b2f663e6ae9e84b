"""API credentials, stored only as SHA-256 digests: personal access tokens and data-plane tokens."""

import hashlib
import secrets

from django.db import models

from konnect_admin.models.control_planes import ControlPlane
from konnect_admin.models.organizations import Organization, User


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(36)}"


class TokenQuerySet(models.QuerySet):
    def active(self):
        from django.utils import timezone

        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class BaseToken(models.Model):
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=16, editable=False, help_text="First characters, to recognise the token.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()  # every token expires (NOT NULL since migration 0004)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TokenQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    @property
    def is_active(self) -> bool:
        from django.utils import timezone

        return self.revoked_at is None and self.expires_at > timezone.now()


class PersonalAccessToken(BaseToken):
    """`kpat_…`: acts as its user, in one organization, with that user's roles."""

    PREFIX = "kpat"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="access_tokens")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="access_tokens")

    class Meta(BaseToken.Meta):
        pass

    def __str__(self):
        return f"{self.name} ({self.hint}…)"


class DataPlaneToken(BaseToken):
    """`kdpt_…`: a gateway data plane of one control plane (ingest, secret resolution)."""

    PREFIX = "kdpt"

    control_plane = models.ForeignKey(ControlPlane, on_delete=models.CASCADE, related_name="data_plane_tokens")
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta(BaseToken.Meta):
        pass

    def __str__(self):
        return f"{self.name} ({self.hint}…)"
