"""Data-plane secret resolution: the only path that turns a stored secret back into plaintext.

A data plane resolves `{vault://<prefix>/<key>}` references of its own control plane: prefix → Vault entity →
config store → secret. Values of a batch are revealed together (one KMS Decrypt per data key, not per secret).
Every reference asked for is recorded with its outcome (`ok` or an error code) — never with the value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from django.db import transaction

from encryption_keys import keyring
from encryption_keys.envelope import DecryptionError
from konnect_admin.models import ControlPlane, DataPlaneToken
from vault.models import CONTROL_CHARACTERS, Secret, SecretResolution, Vault
from vault.references import InvalidReference, VaultReference, parse_reference

logger = logging.getLogger(__name__)

MAX_REFERENCES = 100


class ResolutionCode(StrEnum):
    INVALID_REFERENCE = "invalid_reference"
    VAULT_NOT_FOUND = "vault_not_found"
    CONFIG_STORE_NOT_FOUND = "config_store_not_found"
    SECRET_NOT_FOUND = "secret_not_found"  # noqa: S105 - an error code, not a password


_TITLES = {
    ResolutionCode.INVALID_REFERENCE: "Invalid reference",
    ResolutionCode.VAULT_NOT_FOUND: "Vault not found",
    ResolutionCode.CONFIG_STORE_NOT_FOUND: "Config store not found",
    ResolutionCode.SECRET_NOT_FOUND: "Secret not found",
}


@dataclass(frozen=True)
class ResolutionError:
    code: str
    title: str
    detail: str
    retryable: bool = False

    @classmethod
    def of(cls, code: ResolutionCode, detail: str) -> ResolutionError:
        return cls(code=code.value, title=_TITLES[code], detail=detail)

    @classmethod
    def from_decryption(cls, error: DecryptionError) -> ResolutionError:
        return cls(code=error.code.value, title=error.title, detail=error.message, retryable=error.retryable)

    def as_dict(self) -> dict:
        return {"code": self.code, "title": self.title, "detail": self.detail, "retryable": self.retryable}


@dataclass
class Resolution:
    reference: str
    value: str | None = None
    error: ResolutionError | None = None
    cause: DecryptionError | None = None  # set when the key (not the reference) is the problem

    @property
    def outcome(self) -> str:
        return "ok" if self.error is None else self.error.code


def secrets_resolve(*, control_plane: ControlPlane, token: DataPlaneToken | None, references: list[str]) -> list[Resolution]:
    """Resolve references of `control_plane` (and no other); records every outcome."""
    results = [Resolution(reference=text) for text in references]
    parsed: dict[int, VaultReference] = {}
    for index, result in enumerate(results):
        try:
            parsed[index] = parse_reference(result.reference)
        except InvalidReference as error:
            result.error = ResolutionError.of(ResolutionCode.INVALID_REFERENCE, error.reason)
    vaults = {
        vault.prefix: vault
        for vault in Vault.objects.filter(control_plane=control_plane, prefix__in={r.prefix for r in parsed.values()})
    }
    store_of = {prefix: vault.config_store_id for prefix, vault in vaults.items()}
    secrets = {
        (secret.store_id, secret.key): secret
        for secret in Secret.objects.select_related("store__control_plane").filter(  # for encryption_scope()
            store__control_plane=control_plane,
            store_id__in={store for store in store_of.values() if store is not None},
            key__in={r.key for r in parsed.values()},
        )
    }
    wanted: dict[int, Secret] = {}
    for index, reference in parsed.items():
        error = _locate(reference, vaults, store_of, secrets)
        if isinstance(error, ResolutionError):
            results[index].error = error
        else:
            wanted[index] = error
    _reveal(results, wanted)
    _record(control_plane, token, results)
    return results


def _locate(reference: VaultReference, vaults, store_of, secrets) -> Secret | ResolutionError:
    if reference.prefix not in vaults:
        return ResolutionError.of(ResolutionCode.VAULT_NOT_FOUND,
                                  f"This control plane has no vault with prefix [{reference.prefix}].")
    store_id = store_of[reference.prefix]
    if store_id is None:
        return ResolutionError.of(ResolutionCode.CONFIG_STORE_NOT_FOUND,
                                  f"The config store of vault [{reference.prefix}] was deleted.")
    secret = secrets.get((store_id, reference.key))
    if secret is None:
        return ResolutionError.of(ResolutionCode.SECRET_NOT_FOUND,
                                  f"The config store of vault [{reference.prefix}] has no secret [{reference.key}].")
    return secret


def _reveal(results: list[Resolution], wanted: dict[int, Secret]) -> None:
    distinct = {secret.pk: secret for secret in wanted.values()}
    revealed = dict(zip(distinct, keyring.reveal_many(s.value for s in distinct.values()), strict=True))
    for index, secret in wanted.items():
        outcome = revealed[secret.pk]
        if outcome.ok:
            results[index].value = outcome.value
        else:
            results[index].error = ResolutionError.from_decryption(outcome.error)
            results[index].cause = outcome.error


def _printable(text: str) -> str:
    return CONTROL_CHARACTERS.sub("?", text)[:1100]


@transaction.atomic
def _record(control_plane: ControlPlane, token: DataPlaneToken | None, results: list[Resolution]) -> None:
    SecretResolution.objects.bulk_create([
        SecretResolution(control_plane=control_plane, token=token, reference=_printable(result.reference),
                         outcome=result.outcome)
        for result in results
    ])
    failed = sum(result.error is not None for result in results)
    logger.info("vault resolution for control plane %s: %d references, %d failed",
                control_plane.pk, len(results), failed)
