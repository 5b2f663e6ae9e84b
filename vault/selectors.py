"""Reads of the vault, scoped to the caller's organization and roles. No read here returns a secret value."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from encryption_keys.models import DataKey, EncryptionKey
from konnect_admin import selectors as platform
from konnect_admin.models import ControlPlane, Organization, User
from konnect_admin.permissions import Action, require
from vault.models import CONTROL_CHARACTERS, ConfigStore, ProtectionJob, Secret, SecretResolution, Vault


def control_plane_for_vault(*, user: User, organization: Organization, pk, action: Action = Action.VAULT_VIEW,
                            region: str | None = None) -> ControlPlane:
    """404 for another organization's (or another region's) control plane, 403 without the vault right."""
    control_plane = platform.control_plane_get(user=user, organization=organization, pk=pk,
                                               action=Action.CONTROL_PLANE_VIEW)
    if region is not None and control_plane.region != region:
        raise Http404("No such control plane in this region.")
    require(user, action, control_plane)
    return control_plane


def config_store_list(*, user: User, control_plane: ControlPlane) -> QuerySet[ConfigStore]:
    require(user, Action.VAULT_VIEW, control_plane)
    return ConfigStore.objects.filter(control_plane=control_plane).annotate(secret_count=Count("secrets"))


def config_store_get(*, user: User, control_plane: ControlPlane, pk) -> ConfigStore:
    store = get_object_or_404(config_store_list(user=user, control_plane=control_plane), pk=pk)
    store.control_plane = control_plane
    return store


def secret_list(*, user: User, store: ConfigStore, key_contains: str = "") -> QuerySet[Secret]:
    """Secrets of the store by key. Only the key can be filtered: values are encrypted."""
    require(user, Action.VAULT_VIEW, store.control_plane)
    queryset = Secret.objects.filter(store=store).order_by("key")
    key_contains = CONTROL_CHARACTERS.sub("", key_contains)  # keys have none (PostgreSQL refuses NUL)
    if key_contains:
        queryset = queryset.filter(key__icontains=key_contains)
    return queryset


def secret_get(*, user: User, store: ConfigStore, pk=None, key: str | None = None) -> Secret:
    if key is not None and CONTROL_CHARACTERS.search(key):
        raise Http404("No such secret.")  # keys never hold control characters
    lookup = {"pk": pk} if pk is not None else {"key": key}
    secret = get_object_or_404(secret_list(user=user, store=store), **lookup)
    secret.store = store
    return secret


@dataclass(frozen=True)
class ProtectingKey:
    arn: str
    is_cmek: bool


def with_protecting_keys(secrets, *, control_plane: ControlPlane) -> list[Secret]:
    """The secrets, each with `.protecting_key` (ProtectingKey or None): the KMS key that wraps its DEK —
    read from the DEK's row, not by decrypting anything."""
    secrets = list(secrets)
    rows = DataKey.objects.in_bulk([secret.data_key_id for secret in secrets if secret.data_key_id is not None])
    cmek_arn = EncryptionKey.objects.filter(
        organization_id=control_plane.organization_id, region=control_plane.region
    ).values_list("key_ref", flat=True).first()
    for secret in secrets:
        row = rows.get(secret.data_key_id)
        secret.protecting_key = None
        if row is not None and row.shredded_at is None:
            secret.protecting_key = ProtectingKey(arn=row.wrapping_key_ref, is_cmek=row.wrapping_key_ref == cmek_arn)
    return secrets


def vault_list(*, user: User, control_plane: ControlPlane) -> QuerySet[Vault]:
    require(user, Action.VAULT_VIEW, control_plane)
    return Vault.objects.filter(control_plane=control_plane).select_related("config_store")


def vault_get(*, user: User, control_plane: ControlPlane, pk) -> Vault:
    vault = get_object_or_404(vault_list(user=user, control_plane=control_plane), pk=pk)
    vault.control_plane = control_plane
    return vault


def secret_decryption_error(*, user: User, secret: Secret):
    """Can the secret be decrypted right now? None when it can, else the DecryptionError (with its code).

    The plaintext is opened only to check its integrity and dropped at once: it never leaves this function.
    """
    require(user, Action.VAULT_VIEW, secret.store.control_plane)
    return secret.value.reveal_or_error().error


def resolution_list(*, user: User, control_plane: ControlPlane, limit: int = 10) -> list[SecretResolution]:
    require(user, Action.VAULT_VIEW, control_plane)
    return list(SecretResolution.objects.filter(control_plane=control_plane).select_related("token")[:limit])


def protection_job_get(*, user: User, control_plane: ControlPlane, pk) -> ProtectionJob:
    """A "Protect with CMEK" job of this control plane (404 for any other's); Organization Admins only."""
    require(user, Action.KEY_MANAGE, control_plane.organization)
    return get_object_or_404(ProtectionJob.objects.filter(control_plane=control_plane).select_related("actor"), pk=pk)


def protection_job_unfinished(*, user: User, control_plane: ControlPlane) -> ProtectionJob | None:
    """The job queued or running for this control plane, if any (at most one)."""
    require(user, Action.KEY_MANAGE, control_plane.organization)
    return ProtectionJob.objects.filter(control_plane=control_plane, state__in=ProtectionJob.UNFINISHED).first()
