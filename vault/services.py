"""Writes of the vault: config stores, secrets (values sealed on save, never logged or audited), Vault entities.

Every write checks the actor's right on the control plane and leaves an audit row. A secret write that cannot
get a data key raises EncryptionUnavailable inside its transaction, so nothing is stored.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from encryption_keys.lifecycle.shred import config_store_data_keys, shred_data_keys
from konnect_admin.models import ControlPlane, User
from konnect_admin.permissions import Action, require
from konnect_admin.services import audit_record
from vault.models import CONTROL_CHARACTERS, RESERVED_PREFIXES, SECRET_VALUE_MAX, ConfigStore, Secret, Vault


class ConfigStoreNotEmpty(Exception):
    """Deleting a config store that still has secrets needs `force`."""

    def __init__(self, count: int):
        self.count = count
        super().__init__(
            f"This Config Store has {count} secret{'s' if count != 1 else ''}. These must be individually removed "
            "before deletion or the force=true query param can be used to automatically delete associated entities."
        )


def _audit(actor: User, control_plane: ControlPlane, action: str, target, **details) -> None:
    audit_record(actor=actor, organization=control_plane.organization, action=action, target=target,
                 details={"control_plane": str(control_plane.pk), **{k: str(v) for k, v in details.items()}})


def validate_secret_value(value) -> None:
    """1–5120 characters of text. The messages never repeat the value."""
    if not isinstance(value, str):
        raise ValidationError({"value": ValidationError("The value must be text.", code="invalid")})
    if len(value) < 1:
        raise ValidationError({"value": ValidationError(
            "The value must have at least 1 character.", code="min_length", params={"limit_value": 1})})
    if len(value) > SECRET_VALUE_MAX:
        raise ValidationError({"value": ValidationError(
            f"The value must have at most {SECRET_VALUE_MAX} characters.", code="max_length",
            params={"limit_value": SECRET_VALUE_MAX})})


# --- config stores -----------------------------------------------------------------------------------------


@transaction.atomic
def config_store_create(*, actor: User, control_plane: ControlPlane, name: str | None) -> ConfigStore:
    """Without a name (Kong's API makes it optional) the store is named after its id: `config-store-<8 hex>`."""
    require(actor, Action.VAULT_ADMIN, control_plane)
    store = ConfigStore(control_plane=control_plane)
    name = generated_store_name(store) if name is None else name
    store.name = name
    store.full_clean()
    store.save()
    _audit(actor, control_plane, "vault.config_store.created", store, name=name)
    return store


def generated_store_name(store: ConfigStore) -> str:
    return f"config-store-{store.pk.hex[:8]}"


@transaction.atomic
def config_store_update(*, actor: User, store: ConfigStore, name: str) -> ConfigStore:
    require(actor, Action.VAULT_ADMIN, store.control_plane)
    previous = store.name
    store.name = name
    store.full_clean()
    store.save(update_fields=["name", "updated_at"])
    _audit(actor, store.control_plane, "vault.config_store.renamed", store, previous=previous, name=name)
    return store


@transaction.atomic
def config_store_delete(*, actor: User, store: ConfigStore, force: bool = False) -> int:
    """Delete the store; with secrets only when `force`. Its data keys are crypto-shredded. Returns #secrets."""
    control_plane = store.control_plane
    require(actor, Action.VAULT_ADMIN, control_plane)
    count = store.secrets.count()
    if count and not force:
        raise ConfigStoreNotEmpty(count)
    shredded = shred_data_keys(
        queryset=config_store_data_keys(organization=control_plane.organization, control_plane_id=control_plane.pk,
                                        config_store_id=store.pk),
        actor=actor, reason="config store deleted",
    )
    _audit(actor, control_plane, "vault.config_store.deleted", store, name=store.name, secrets_deleted=count,
           data_keys_shredded=shredded)
    store.delete()
    return count


# --- secrets -----------------------------------------------------------------------------------------------


def secret_create(*, actor: User, store: ConfigStore, key: str, value: str) -> Secret:
    require(actor, Action.VAULT_ADMIN, store.control_plane)
    validate_secret_value(value)
    secret = Secret(store=store, key=key)
    secret.full_clean(exclude=["value"], validate_constraints=False)
    try:
        with transaction.atomic():
            if Secret.objects.filter(store=store, key=key).exists():
                raise IntegrityError("duplicate key")
            secret.value = value
            secret.save(force_insert=True)
            _audit(actor, store.control_plane, "vault.secret.created", secret, config_store=store.pk, key=key)
    except IntegrityError:
        raise ValidationError({"key": ValidationError(
            "A secret with this key already exists in the config store.", code="unique")}) from None
    return secret


def secret_update(*, actor: User, secret: Secret, value: str) -> Secret:
    """Replace the value (sealed under the store's current DEK); the old value cannot be read back either."""
    store = secret.store
    require(actor, Action.VAULT_ADMIN, store.control_plane)
    validate_secret_value(value)
    with transaction.atomic():
        secret.value = value
        secret.save(update_fields=["value", "updated_at"])
        _audit(actor, store.control_plane, "vault.secret.updated", secret, config_store=store.pk, key=secret.key)
    return secret


def secret_put(*, actor: User, store: ConfigStore, key: str, value: str) -> tuple[Secret, bool]:
    """Create or replace the secret `key`: (secret, created)."""
    # A key with control characters cannot exist (and PostgreSQL refuses NUL): secret_create rejects it.
    lookup = not CONTROL_CHARACTERS.search(key)
    existing = Secret.objects.filter(store=store, key=key).first() if lookup else None
    if existing is not None:
        return secret_update(actor=actor, secret=existing, value=value), False
    try:
        return secret_create(actor=actor, store=store, key=key, value=value), True
    except ValidationError:
        raced = Secret.objects.filter(store=store, key=key).first() if lookup else None
        if raced is None:
            raise
        return secret_update(actor=actor, secret=raced, value=value), False  # created concurrently: replace it


@transaction.atomic
def secret_delete(*, actor: User, secret: Secret) -> None:
    store = secret.store
    require(actor, Action.VAULT_ADMIN, store.control_plane)
    _audit(actor, store.control_plane, "vault.secret.deleted", secret, config_store=store.pk, key=secret.key)
    secret.delete()


# --- Vault entities ----------------------------------------------------------------------------------------


def _vault_clean(vault: Vault) -> None:
    errors = {}
    if vault.prefix in RESERVED_PREFIXES:
        errors["prefix"] = ValidationError(f"'{vault.prefix}' is the name of a bundled Kong vault.", code="invalid")
    elif Vault.objects.filter(control_plane=vault.control_plane, prefix=vault.prefix).exclude(pk=vault.pk).exists():
        errors["prefix"] = ValidationError("A vault with this prefix already exists on this control plane.",
                                           code="unique")
    if vault.config_store is not None and vault.config_store.control_plane_id != vault.control_plane_id:
        errors["config_store"] = ValidationError("Choose a config store of this control plane.", code="invalid")
    try:
        vault.full_clean(validate_constraints=False)
    except ValidationError as error:
        for name, messages in error.message_dict.items():
            errors.setdefault(name, messages)
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def vault_create(*, actor: User, control_plane: ControlPlane, prefix: str, config_store: ConfigStore,
                 description: str = "") -> Vault:
    require(actor, Action.VAULT_ADMIN, control_plane)
    vault = Vault(control_plane=control_plane, prefix=prefix, description=description, config_store=config_store)
    _vault_clean(vault)
    vault.save()
    _audit(actor, control_plane, "vault.vault.created", vault, prefix=prefix, config_store=config_store.pk)
    return vault


@transaction.atomic
def vault_update(*, actor: User, vault: Vault, prefix: str, config_store: ConfigStore, description: str = "") -> Vault:
    require(actor, Action.VAULT_ADMIN, vault.control_plane)
    previous = vault.prefix
    vault.prefix, vault.description, vault.config_store = prefix, description, config_store
    _vault_clean(vault)
    vault.save()
    _audit(actor, vault.control_plane, "vault.vault.updated", vault, previous_prefix=previous, prefix=prefix,
           config_store=config_store.pk)
    return vault


@transaction.atomic
def vault_delete(*, actor: User, vault: Vault) -> None:
    require(actor, Action.VAULT_ADMIN, vault.control_plane)
    _audit(actor, vault.control_plane, "vault.vault.deleted", vault, prefix=vault.prefix)
    vault.delete()
