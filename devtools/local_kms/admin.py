"""Out-of-band control of the local KMS: create, replicate, disable, schedule deletion, … a key.

These helpers act on moto's process-global KMS backends directly (no boto3, no HTTP): they play the
customer changing their key in the AWS console, which is what demos, fixtures and tests need. Every
``LocalKmsServer`` in this process sees the change immediately. Keys are addressed by key ARN
(``arn:aws:kms:<region>:<account>:key/<id>``); the account is moto's default unless given.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.core.utils import utcnow
from moto.kms.models import kms_backends

from . import fidelity

DEFAULT_ACCOUNT_ID = "123456789012"

#: Key states a key can be put in with ``set_key_state`` (AWS's KeyState enum).
KEY_STATES = frozenset(
    {
        "Creating",
        "Enabled",
        "Disabled",
        "PendingDeletion",
        "PendingImport",
        "PendingReplicaDeletion",
        "Unavailable",
        "Updating",
    }
)


def parse_key_arn(arn: str) -> tuple[str, str, str]:
    """``arn:aws:kms:us-west-2:123456789012:key/<id>`` → ``(region, account_id, key_id)``."""
    parts = arn.split(":", 5) if isinstance(arn, str) else []
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "kms" or not parts[5].startswith("key/"):
        raise ValueError(f"not a KMS key ARN: {arn!r}")
    return parts[3], parts[4], parts[5].removeprefix("key/")


def _backend(region: str, account_id: str = DEFAULT_ACCOUNT_ID) -> Any:
    return kms_backends[account_id][region]


def get_key(arn: str) -> Any:
    """The moto ``Key`` object behind an ARN; ``KeyError`` if the local KMS has no such key."""
    region, account_id, key_id = parse_key_arn(arn)
    try:
        return _backend(region, account_id).keys[key_id]
    except KeyError:
        raise KeyError(f"the local KMS has no key {arn}") from None


def create_key(
    *,
    region: str,
    description: str = "",
    multi_region: bool = False,
    key_spec: str = "SYMMETRIC_DEFAULT",
    key_usage: str = "ENCRYPT_DECRYPT",
    policy: dict[str, Any] | None = None,
    rotation: bool = True,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> str:
    """Create a key and return its ARN. ``rotation`` applies to symmetric encryption keys only
    (AWS does not rotate asymmetric or HMAC keys)."""
    fidelity.apply()
    key = _backend(region, account_id).create_key(
        json.dumps(policy) if policy is not None else None,
        key_usage,
        key_spec,
        description,
        None,
        multi_region,
        "AWS_KMS",
    )
    key.key_rotation_status = bool(rotation) and key.key_spec == "SYMMETRIC_DEFAULT"
    return key.arn


def replicate_key(arn: str, *, to_region: str, policy: dict[str, Any] | None = None) -> str:
    """Replicate a multi-Region primary key into ``to_region``; return the replica's ARN."""
    fidelity.apply()
    region, account_id, key_id = parse_key_arn(arn)
    replica = _backend(region, account_id).replicate_key(
        key_id, to_region, json.dumps(policy) if policy is not None else None
    )
    return replica.arn


def describe_key(arn: str) -> dict[str, Any]:
    """DescribeKey's ``KeyMetadata`` for the key (as moto serializes it)."""
    key = get_key(arn)
    return key.to_dict()["KeyMetadata"]


def set_key_state(arn: str, state: str, *, deletion_date: datetime | None = None) -> None:
    """Force a key into any AWS key state (e.g. ``Unavailable``), bypassing transition rules.

    ``deletion_date`` (default: in 7 days) is only used for ``PendingDeletion``.
    """
    if state not in KEY_STATES:
        raise ValueError(f"unknown key state {state!r}; expected one of {sorted(KEY_STATES)}")
    key = get_key(arn)
    key.key_state = state
    key.enabled = state == "Enabled"
    if state != "PendingDeletion":
        key.deletion_date = None
    elif deletion_date is None:
        key.deletion_date = utcnow() + timedelta(days=7)
    elif deletion_date.tzinfo is not None:  # moto keeps naive UTC datetimes
        key.deletion_date = deletion_date.astimezone(UTC).replace(tzinfo=None)
    else:
        key.deletion_date = deletion_date


def disable_key(arn: str) -> None:
    set_key_state(arn, "Disabled")


def enable_key(arn: str) -> None:
    set_key_state(arn, "Enabled")


def schedule_key_deletion(arn: str, days: int = 7) -> datetime:
    """Put the key in ``PendingDeletion`` (7–30 days, like AWS); return the (aware, UTC) deletion date."""
    if not 7 <= days <= 30:
        raise ValueError(f"the deletion window must be 7–30 days, not {days}")
    deletion_date = datetime.now(UTC) + timedelta(days=days)
    set_key_state(arn, "PendingDeletion", deletion_date=deletion_date)
    return deletion_date


def cancel_key_deletion(arn: str) -> None:
    """Cancel a scheduled deletion; like AWS the key comes back ``Disabled``."""
    if get_key(arn).key_state != "PendingDeletion":
        raise ValueError(f"{arn} is not pending deletion")
    set_key_state(arn, "Disabled")


def put_key_policy(arn: str, policy: dict[str, Any]) -> None:
    get_key(arn).policy = json.dumps(policy)


def set_key_rotation(arn: str, enabled: bool) -> None:
    get_key(arn).key_rotation_status = bool(enabled)


def delete_key_material_or_key(arn: str) -> None:
    """Delete the key from its region (the end of a deletion window): every later call naming it
    answers NotFoundException, and its ciphertexts can never be decrypted again. A deleted replica
    also leaves its multi-Region key's configuration."""
    key = get_key(arn)
    region, account_id, key_id = parse_key_arn(arn)
    _backend(region, account_id).delete_key(key_id)
    if getattr(key, "multi_region", False):
        primary_arn = key.multi_region_configuration["PrimaryKey"]["Arn"]
        if primary_arn != key.arn:
            try:
                primary = get_key(primary_arn)
            except KeyError:
                return
            config = primary.multi_region_configuration
            config["ReplicaKeys"] = [r for r in config["ReplicaKeys"] if r["Arn"] != key.arn]
            fidelity.sync_multi_region_configuration(primary)
