"""Linking a Transit key: its checklist, the policy to grant, what its readings mean, and what to do about errors.

The checklist runs in order and stops at the first blocking failure (a reference to a server the operator did
not configure is refused before any request; a server that does not answer is not asked to log in; a key that
cannot be read is not asked for a data key). Linking is allowed when no check fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from encryption_keys.envelope import ERROR_CODES, ErrorCode
from encryption_keys.models import KeyStatus
from encryption_keys.providers.base import AccessStatement, InvalidKeyRef, KeyHealth, KeyServiceError
from encryption_keys.providers.transit.reference import EXAMPLE, TransitRef, parse_transit_ref
from encryption_keys.providers.transit.servers import TransitServer
from encryption_keys.verification import Checklist, Outcome, Verdict, run_checks

KEY_TYPE = "aes256-gcm96"

REMEDIES = {
    ErrorCode.KEY_DISABLED: (
        "Restore the key if it was soft-deleted (bao write -f <mount>/keys/<name>/soft-delete-restore), or lower "
        "its min_decryption_version back to the version the error names "
        "(bao write <mount>/keys/<name>/config min_decryption_version=<version>)."
    ),
    ErrorCode.KEY_ACCESS_DENIED: (
        "Attach the Transit policy shown on the key's page (Organization settings → Encryption keys) to the token "
        "or AppRole the platform uses on your server again (bao policy write …), and check its secret ID is valid."
    ),
    ErrorCode.KEY_NOT_FOUND: (
        "Nothing can bring this data back unless the key is restored on the Transit server from a backup "
        "(bao write <mount>/restore/<name>): the key no longer exists."
    ),
    ErrorCode.KMS_UNAVAILABLE: (
        "Try again in a moment: it is usually temporary. If it lasts, check that the OpenBao / Vault server is "
        "unsealed and reachable from the platform (bao status)."
    ),
}


# --- readings -------------------------------------------------------------------------------------------
def snapshot(key: dict, previous: dict | None = None) -> dict:
    """The JSON-safe facts of a ``keys/<name>`` read kept on the EncryptionKey.

    ``oldest_wrapping_version`` is the key's latest version at the first reading (the link), carried forward:
    the platform has wrapped data keys with every version since, so a ``min_decryption_version`` above it makes
    some of them unreadable."""
    latest = int(key.get("latest_version") or 0)
    period = int(key.get("auto_rotate_period") or 0)
    oldest = (previous or {}).get("oldest_wrapping_version") or latest
    return {
        "provider": "transit",
        "name": key.get("name", ""),
        "type": key.get("type", ""),
        "derived": bool(key.get("derived")),
        "exportable": bool(key.get("exportable")),
        "allow_plaintext_backup": bool(key.get("allow_plaintext_backup")),
        "deletion_allowed": bool(key.get("deletion_allowed")),
        "soft_deleted": bool(key.get("soft_deleted")),
        "auto_rotate_period": period,
        "rotation_enabled": period > 0,
        "latest_version": latest,
        "min_decryption_version": int(key.get("min_decryption_version") or 0),
        "min_encryption_version": int(key.get("min_encryption_version") or 0),
        "oldest_wrapping_version": int(oldest),
    }


def state_of(metadata: dict) -> KeyHealth:
    if metadata["soft_deleted"]:
        return KeyHealth(KeyStatus.DISABLED, metadata, error="The key is soft-deleted on the Transit server.")
    if metadata["min_decryption_version"] > metadata["oldest_wrapping_version"]:
        version = metadata["oldest_wrapping_version"]
        return KeyHealth(KeyStatus.DISABLED, metadata, error=(
            f"min_decryption_version is {metadata['min_decryption_version']}, above version {version} that wrapped "
            f"this organization's oldest data keys: lower it back to {version}."))
    if not metadata["derived"] or metadata["type"] != KEY_TYPE:
        return KeyHealth(KeyStatus.ACCESS_DENIED, metadata, error=(
            f"The key is no longer a derived {KEY_TYPE} key: it was deleted and created again differently."))
    return KeyHealth(KeyStatus.HEALTHY if metadata["rotation_enabled"] else KeyStatus.ROTATION_DISABLED, metadata)


def encryption_context(*, organization_id, region: str, purpose: str) -> dict[str, str]:
    return {"konnect:org": str(organization_id), "konnect:region": region, "konnect:purpose": purpose,
            "konnect:datakey": str(uuid.uuid4())}


def prove_key_use(provider, *, key_ref: str, organization_id, region: str, purpose: str) -> None:
    """datakey → decrypt with the organization's context, and decrypt refused under another organization's:
    proves the policy, the key and the context binding. Raises KeyServiceError with ``operation`` set."""
    context = encryption_context(organization_id=organization_id, region=region, purpose=purpose)
    operation = "datakey"
    try:
        plaintext, wrapped = provider.generate_data_key(key_ref=key_ref, context=context,
                                                        organization_id=organization_id)
        operation = "decrypt"
        unwrapped = provider.decrypt(key_ref=key_ref, wrapped=wrapped, context=context,
                                     organization_id=organization_id)
        if unwrapped != plaintext:
            raise KeyServiceError(ErrorCode.INTEGRITY, key_ref=key_ref, detail="decrypt returned another data key")
        operation = "decrypt with another organization's context"
        stranger = {**context, "konnect:org": f"not-{organization_id}"}
        try:
            provider.decrypt(key_ref=key_ref, wrapped=wrapped, context=stranger, organization_id=organization_id)
        except KeyServiceError as refused:
            if refused.code is not ErrorCode.INTEGRITY:
                raise
        else:
            raise KeyServiceError(ErrorCode.INTEGRITY, key_ref=key_ref, provider_code="context not bound",
                                  detail="the data key unwrapped under another organization's context")
    except KeyServiceError as error:
        error.operation = operation
        raise


# --- the checklist ----------------------------------------------------------------------------------------
@dataclass
class _Run:
    provider: object
    organization_id: str
    region: str
    key_ref: str
    ref: TransitRef | None = None
    server: TransitServer | None = None
    key: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


def _failed(error: KeyServiceError, what: str, fix: str = "") -> Outcome:
    return (Verdict.FAIL, f"{what} ({error.provider_code or error.code})",
            fix or REMEDIES.get(error.code) or ERROR_CODES[error.code].remedy, error.code.value)


def _reference(run: _Run) -> Outcome:
    try:
        run.ref = parse_transit_ref(run.key_ref)
    except InvalidKeyRef as invalid:
        return Verdict.FAIL, invalid.reason, f"Paste the key's reference: {EXAMPLE}."
    return Verdict.PASS, f"Key “{run.ref.name}” of the Transit engine mounted at {run.ref.mount}/ on {run.ref.address}.", ""


def _server(run: _Run) -> Outcome:
    try:
        run.server = run.provider.server_for(run.ref)
    except InvalidKeyRef as invalid:
        return Verdict.FAIL, invalid.reason, "Use a Transit server this installation's operator configured."
    if run.region not in run.server.regions:
        return (Verdict.FAIL, f"{run.ref.address} is not configured for the {run.region.upper()} region: data of this "
                "region must stay where its operator allows.", "Use a Transit server configured for this region.")
    if not run.server.serves(region=run.region, organization_id=run.organization_id):
        return (Verdict.FAIL, f"{run.ref.address} is configured for other organizations only.",
                "Ask the operator to allow your organization on this server.")
    return Verdict.PASS, f"{run.ref.address} is a Transit server the platform is configured to call for this region.", ""


def _reachable(run: _Run) -> Outcome:
    try:
        status = run.provider.server_health(run.server, key_ref=run.ref.text, organization_id=run.organization_id)
    except KeyServiceError as error:
        return _failed(error, f"{run.ref.address} did not answer.")
    if status.get("sealed") or not status.get("initialized", True):
        return (Verdict.FAIL, f"{run.ref.address} is sealed or not initialised.", "Unseal the server (bao operator unseal).",
                ErrorCode.KMS_UNAVAILABLE.value)
    return Verdict.PASS, f"{run.ref.address} answers and is unsealed (OpenBao / Vault {status.get('version', '?')}).", ""


def _authenticates(run: _Run) -> Outcome:
    method = "AppRole" if run.server.auth_method == "approle" else "token"
    try:
        run.provider.authenticate(run.server, key_ref=run.ref.text, organization_id=run.organization_id)
    except KeyServiceError as error:
        return _failed(error, f"The platform could not authenticate with its configured {method}.",
                       "Ask the platform operator to renew the platform's credentials for this server.")
    return Verdict.PASS, f"The platform authenticates with its configured {method}.", ""


def _key_exists(run: _Run) -> Outcome:
    try:
        run.key = run.provider.read_key(run.ref.text, organization_id=run.organization_id)
    except KeyServiceError as error:
        if error.code is ErrorCode.KEY_NOT_FOUND:
            return _failed(error, f"No key “{run.ref.name}” under {run.ref.mount}/ (or the mount path has a typo).",
                           f"Create it: bao write {run.ref.mount}/keys/{run.ref.name} type={KEY_TYPE} derived=true.")
        if error.code is ErrorCode.KEY_ACCESS_DENIED:
            return _failed(error, f"The platform may not read {run.ref.mount}/keys/{run.ref.name}: the policy shown "
                           "on this page is not attached to the platform's token or AppRole, or the mount or key "
                           "name has a typo (the policy names one key, so another name is refused, not missing).")
        return _failed(error, f"Reading {run.ref.mount}/keys/{run.ref.name} failed.")
    run.metadata = snapshot(run.key)
    if run.metadata["soft_deleted"]:
        return (Verdict.FAIL, "The key is soft-deleted: Transit refuses to use it.",
                f"Restore it: bao write -f {run.ref.mount}/keys/{run.ref.name}/soft-delete-restore.",
                ErrorCode.KEY_DISABLED.value)
    return Verdict.PASS, f"The key exists (latest version {run.metadata['latest_version']}).", ""


def _key_type(run: _Run) -> Outcome:
    if run.metadata["type"] == KEY_TYPE:
        return Verdict.PASS, f"An {KEY_TYPE} key.", ""
    return (Verdict.FAIL, f"The key's type is {run.metadata['type']}: only {KEY_TYPE} keys wrap data keys here.",
            f"Create a key with type={KEY_TYPE} derived=true (the type cannot be changed).")


def _derived(run: _Run) -> Outcome:
    if run.metadata["derived"]:
        return Verdict.PASS, "A derived key: each data key is bound to this organization's encryption context.", ""
    return (Verdict.FAIL, "The key is not derived: Transit would ignore the encryption context, so a wrapped data "
            "key copied to another organization would still unwrap.",
            f"Create a key with derived=true (bao write {run.ref.mount}/keys/<new name> type={KEY_TYPE} derived=true); "
            "derivation cannot be turned on later.")


def _not_exportable(run: _Run) -> Outcome:
    if run.metadata["exportable"]:
        return (Verdict.FAIL, "The key is exportable: its material can be read out of the server, and this cannot be undone.",
                "Create a new key without exportable=true and link that one.")
    if run.metadata["allow_plaintext_backup"]:
        return (Verdict.WARN, "The key allows plaintext backups: its material can leave the server in a backup.",
                "Prefer keys without allow_plaintext_backup (it cannot be turned off once on).")
    return Verdict.PASS, "The key is not exportable.", ""


def _deletion(run: _Run) -> Outcome:
    if run.metadata["deletion_allowed"]:
        return (Verdict.WARN, "Deletion is allowed: deleting the key destroys every data key it wraps, for good.",
                f"bao write {run.ref.mount}/keys/{run.ref.name}/config deletion_allowed=false.")
    return Verdict.PASS, "Deletion is not allowed (deletion_allowed=false).", ""


def _rotation(run: _Run) -> Outcome:
    period = run.metadata["auto_rotate_period"]
    if period:
        return Verdict.PASS, f"Automatic rotation every {period // 3600 or period} {'hours' if period >= 3600 else 'seconds'}.", ""
    return (Verdict.WARN, "Automatic rotation is off (auto_rotate_period=0).",
            f"bao write {run.ref.mount}/keys/{run.ref.name}/config auto_rotate_period=8760h.")


def _min_decryption(run: _Run) -> Outcome:
    minimum, latest = run.metadata["min_decryption_version"], run.metadata["latest_version"]
    note = (f"New data keys are wrapped by version {latest}; raising min_decryption_version above it later makes "
            "them unreadable until it is lowered again.")
    if minimum > 1:
        return (Verdict.WARN, f"min_decryption_version is {minimum}: versions below it no longer decrypt. {note}", "")
    return Verdict.PASS, f"min_decryption_version is {minimum or 1}: every version decrypts. {note}", ""


def _round_trip(run: _Run) -> Outcome:
    try:
        prove_key_use(run.provider, key_ref=run.ref.text, organization_id=run.organization_id, region=run.region,
                      purpose="verification")
    except KeyServiceError as error:
        return _failed(error, f"Transit refused {error.operation}.")
    return (Verdict.PASS, "datakey → decrypt succeeded with this organization's encryption context, and decrypt "
            "with another organization's context was refused: the policy lets the platform use this key, bound to you.", "")


CHECKS: list[tuple[str, str, bool, Callable[[_Run], Outcome]]] = [
    ("ref_syntax", "Transit key reference", True, _reference),
    ("server", "Transit server configured for this region", True, _server),
    ("reachable", "Server reachable and unsealed", True, _reachable),
    ("authenticates", "Platform authenticates", True, _authenticates),
    ("key_exists", "Key found", True, _key_exists),
    ("key_type", f"Key type {KEY_TYPE}", True, _key_type),
    ("derived", "Derived key (context binding)", True, _derived),
    ("not_exportable", "Key not exportable", False, _not_exportable),
    ("deletion", "Deletion not allowed", False, _deletion),
    ("rotation", "Automatic rotation", False, _rotation),
    ("min_decryption_version", "min_decryption_version", False, _min_decryption),
    ("round_trip", "Wrap and unwrap with your encryption context", True, _round_trip),
]


def verify(provider, *, organization, region: str, key_ref: str) -> Checklist:
    run = _Run(provider=provider, organization_id=str(organization.pk), region=region, key_ref=(key_ref or "").strip())
    checklist = run_checks(CHECKS, run, key_ref=run.key_ref, region=region, provider="transit")
    if run.ref is not None:
        checklist.key_ref = run.ref.text  # normalised, as it is stored
    checklist.metadata = run.metadata
    return checklist


# --- what the customer grants, and what the key page shows -------------------------------------------------
def access_statement(organization, *, key_ref: str | None = None) -> AccessStatement:
    mount, name = "<mount>", "<key name>"
    if key_ref:
        try:
            ref = parse_transit_ref(key_ref)
            mount, name = ref.mount, ref.name
        except InvalidKeyRef:
            pass
    paths = [("datakey/plaintext", "update"), ("decrypt", "update"), ("encrypt", "update"), ("rewrap", "update"),
             ("keys", "read")]
    lines = [f"# Konnect Admin: use of Transit key {name} for organization {organization.pk}"]
    lines += [f'path "{mount}/{path}/{name}" {{\n  capabilities = ["{capability}"]\n}}' for path, capability in paths]
    return AccessStatement(
        title="Transit policy",
        language="hcl",
        text="\n".join(lines) + "\n",
        instructions=(
            "Write this policy (bao policy write konnect-admin policy.hcl) and attach it to the token or AppRole "
            "the platform operator configured for your server. Grant exactly these capabilities: with create on "
            "encrypt, a deleted key would silently be created again."
        ),
    )


_ROWS = [
    ("Type", "type"), ("Latest version", "latest_version"), ("min_decryption_version", "min_decryption_version"),
    ("Derived", "derived"), ("Exportable", "exportable"), ("Deletion allowed", "deletion_allowed"),
    ("Soft-deleted", "soft_deleted"),
]


def metadata_rows(metadata: dict) -> list[tuple[str, str]]:
    rows = []
    for label, field_name in _ROWS:
        if field_name in metadata:
            value = metadata[field_name]
            rows.append((label, ("yes" if value else "no") if isinstance(value, bool) else str(value)))
    if "auto_rotate_period" in metadata:
        period = metadata["auto_rotate_period"]
        rows.append(("Automatic rotation", f"every {period} s" if period else "off"))
    return rows
