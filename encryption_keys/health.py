"""Reading a key's health from KMS, and what an unhealthy key means for the organization.

`read_key_health` only reads (DescribeKey, GetKeyRotationStatus, a GenerateDataKey → Decrypt round
trip with the organization's encryption context); `services.check_key_health` stores the result.
`read_key_state` is the scheduled sweep's one-call reading (DescribeKey; see `sweep.py`).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.utils import timezone

from encryption_keys import kms
from encryption_keys.envelope import ERROR_CODES, ErrorCode
from encryption_keys.geos import aws_region_of
from encryption_keys.models import KeyStatus

#: Statuses where the key no longer decrypts: cached DEKs wrapped by it must go.
REVOKED = frozenset({KeyStatus.DISABLED, KeyStatus.PENDING_DELETION, KeyStatus.ACCESS_DENIED, KeyStatus.NOT_FOUND})
#: Statuses that earn an organization-wide banner.
UNHEALTHY = REVOKED | {KeyStatus.UNREACHABLE}

#: The status a linked key takes when the key service answers a code (read from `envelope.ERROR_CODES`).
STATUS_OF_ERROR = {code: KeyStatus(facts.key_status) for code, facts in ERROR_CODES.items() if facts.key_status}

AFFECTED_DATA = "Debugger payload captures, Debugger request logs and Config Store (vault) secrets"

#: What an Organization Admin does about a key in each unhealthy status: the remedy of the first code giving it.
WHAT_TO_DO = {status: ERROR_CODES[code].remedy for code, status in reversed(STATUS_OF_ERROR.items())}


@dataclass
class KeyHealth:
    status: KeyStatus
    metadata: dict = field(default_factory=dict)
    deletion_date: datetime | None = None
    error: str = ""


def revocation_bound_seconds() -> int:
    return int(settings.DATAKEY_CACHE_TTL)


def days_left(deletion_date: datetime | None) -> int | None:
    if deletion_date is None:
        return None
    return max(0, math.ceil((deletion_date - timezone.now()).total_seconds() / 86400))


def deletion_date_of(description: dict) -> datetime | None:
    value = description.get("DeletionDate")
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def key_regions(description: dict) -> list[str]:
    """The AWS regions that hold this key: itself, or a multi-region key's primary and replicas."""
    configuration = description.get("MultiRegionConfiguration") or {}
    regions = {(configuration.get("PrimaryKey") or {}).get("Region")}
    regions |= {replica.get("Region") for replica in configuration.get("ReplicaKeys") or []}
    regions.discard(None)
    if not regions:
        regions.add(aws_region_of(description.get("Arn", "")))
    return sorted(r for r in regions if r)


def snapshot(description: dict, rotation_enabled: bool | None) -> dict:
    """The JSON-safe part of DescribeKey / GetKeyRotationStatus kept on the EncryptionKey."""
    deletion_date = deletion_date_of(description)
    configuration = description.get("MultiRegionConfiguration") or {}
    return {
        "key_id": description.get("KeyId", ""),
        "account": description.get("AWSAccountId", ""),
        "key_state": description.get("KeyState", ""),
        "key_spec": description.get("KeySpec", ""),
        "key_usage": description.get("KeyUsage", ""),
        "multi_region": bool(description.get("MultiRegion")),
        "multi_region_key_type": configuration.get("MultiRegionKeyType", ""),
        "replica_regions": key_regions(description),
        "rotation_enabled": rotation_enabled,
        "deletion_date": deletion_date.isoformat() if deletion_date else None,
    }


def encryption_context(*, organization_id, region: str, purpose: str) -> dict[str, str]:
    """The context every platform call carries; a fresh `konnect:datakey` for a probe."""
    return {
        "konnect:org": str(organization_id),
        "konnect:region": region,
        "konnect:purpose": purpose,
        "konnect:datakey": str(uuid.uuid4()),
    }


def prove_key_use(*, key_arn: str, organization_id, region: str, purpose: str) -> None:
    """GenerateDataKey → Decrypt with the organization's context: proves the key policy for this organization.

    Raises KmsError with `operation` set to the call KMS refused; the data key is thrown away at once.
    """
    context = encryption_context(organization_id=organization_id, region=region, purpose=purpose)
    operation = "GenerateDataKey"
    try:
        plaintext, wrapped = kms.generate_data_key(key_arn=key_arn, context=context, organization_id=organization_id)
        operation = "Decrypt"
        unwrapped = kms.decrypt(key_arn=key_arn, wrapped=wrapped, context=context, organization_id=organization_id)
    except kms.KmsError as error:
        error.operation = operation
        raise
    if unwrapped != plaintext:
        error = kms.KmsError(ErrorCode.INTEGRITY, key_arn=key_arn, detail="Decrypt returned another data key")
        error.operation = operation
        raise error


def read_rotation(*, key_arn: str, organization_id) -> bool | None:
    """GetKeyRotationStatus, or None when KMS will not say."""
    try:
        return kms.get_key_rotation_status(key_arn=key_arn, organization_id=organization_id)
    except kms.KmsError:
        return None


def read_key_health(*, key_arn: str, organization_id, region: str) -> KeyHealth:
    """The full check ("Check now", `check_keys`, a re-check after a failure): DescribeKey, the rotation status
    and a data-key round trip with the organization's context — up to 4 KMS calls."""
    try:
        description = kms.describe_key(key_arn=key_arn, organization_id=organization_id)
    except kms.KmsError as error:
        return _refused(error)
    rotation = None
    if description.get("KeySpec") == "SYMMETRIC_DEFAULT":  # AWS rotates symmetric keys only
        rotation = read_rotation(key_arn=key_arn, organization_id=organization_id)
    metadata = snapshot(description, rotation)
    if (not_enabled := _not_enabled(description, metadata)) is not None:
        return not_enabled
    try:
        prove_key_use(key_arn=key_arn, organization_id=organization_id, region=region, purpose="health-check")
    except kms.KmsError as error:
        status = STATUS_OF_ERROR.get(error.code, KeyStatus.UNREACHABLE)
        return KeyHealth(status, metadata, error=f"{error.operation}: {error.detail}"[:500])
    return KeyHealth(_enabled_status(rotation), metadata)


def read_key_state(*, key_arn: str, organization_id=None, rotation_enabled: bool | None = None) -> KeyHealth:
    """The scheduled sweep's reading: DescribeKey alone, one KMS call per key, so a sweep of every key of the
    installation costs as many calls as there are keys (and many can be in flight at once).

    Why DescribeKey: its answer carries the key state (disabled, pending deletion — with the deletion date the
    banner counts down to), and its errors say the key is gone (not found) or that the key policy no longer
    lets the platform in (access denied). What it cannot see — a policy that admits the platform but refuses
    this organization's encryption context — the data path sees on its first refused read or write, which marks
    the key at once; the full check (`read_key_health`) proves it again. Rotation is not read here:
    `rotation_enabled` is the flag the last full check stored, kept so a sweep never flips a key's rotation.
    """
    try:
        description = kms.describe_key(key_arn=key_arn, organization_id=organization_id)
    except kms.KmsError as error:
        return _refused(error)
    metadata = snapshot(description, rotation_enabled)
    if (not_enabled := _not_enabled(description, metadata)) is not None:
        return not_enabled
    return KeyHealth(_enabled_status(rotation_enabled), metadata)


def _refused(error: kms.KmsError) -> KeyHealth:
    return KeyHealth(STATUS_OF_ERROR.get(error.code, KeyStatus.UNREACHABLE), error=error.detail[:500])


def _not_enabled(description: dict, metadata: dict) -> KeyHealth | None:
    """The reading of a key DescribeKey reports in a state other than Enabled; None when it is Enabled."""
    state = description.get("KeyState", "")
    if state == "Enabled":
        return None
    if state == "Disabled":
        return KeyHealth(KeyStatus.DISABLED, metadata)
    if state == "PendingDeletion":
        return KeyHealth(KeyStatus.PENDING_DELETION, metadata, deletion_date_of(description))
    return KeyHealth(KeyStatus.UNREACHABLE, metadata, error=f"The key is in state {state}.")


def _enabled_status(rotation_enabled: bool | None) -> KeyStatus:
    return KeyStatus.HEALTHY if rotation_enabled is not False else KeyStatus.ROTATION_DISABLED


def banner_for(key, *, link: str | None) -> dict:
    """The organization-wide banner of an unhealthy key."""
    region = key.get_region_display()
    if key.status == KeyStatus.PENDING_DELETION and key.deletion_date:
        left = days_left(key.deletion_date)
        title = f"Encryption key “{key.name}” ({region}) is scheduled for deletion on {key.deletion_date:%Y-%m-%d} ({left} days left)."
    else:
        title = f"Encryption key “{key.name}” ({region}): {key.get_status_display().lower()}."
    if key.status == KeyStatus.UNREACHABLE:
        message = f"{AFFECTED_DATA} of the {region} region may be unreadable until it is reachable again."
    else:
        message = f"{AFFECTED_DATA} of the {region} region protected by this key cannot be decrypted."
    return {
        "level": "warning" if key.status == KeyStatus.UNREACHABLE else "error",
        "title": title,
        "message": f"{message} {WHAT_TO_DO[key.status]}",
        "link": link,
        "link_label": "Open the key" if link else "",
    }
