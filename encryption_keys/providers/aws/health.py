"""Reading an AWS KMS key's state: DescribeKey parsed into the snapshot kept on the EncryptionKey and a status.

`read_key_health` is the full check (DescribeKey, GetKeyRotationStatus, a data-key round trip with the
organization's context); `read_key_state` the scheduled sweep's one-call reading (`sweep.py`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from encryption_keys import health
from encryption_keys.models import KeyStatus
from encryption_keys.providers.aws import kms
from encryption_keys.providers.aws.arns import aws_region_of
from encryption_keys.providers.base import KeyHealth


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
        health.prove_key_use(key_ref=key_arn, organization_id=organization_id, region=region, purpose="health-check")
    except kms.KmsError as error:
        status = health.STATUS_OF_ERROR.get(error.code, KeyStatus.UNREACHABLE)
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
    return KeyHealth(health.STATUS_OF_ERROR.get(error.code, KeyStatus.UNREACHABLE), error=error.detail[:500])


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
