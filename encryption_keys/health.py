"""A key's health, whichever key service holds it, and what an unhealthy key means for the organization.

`read_key_health` only reads (the key's provider: its metadata, and a data-key round trip with the
organization's encryption context); `services.check_key_health` stores the result. `read_key_state` is the
scheduled sweep's one-call reading (see `sweep.py`). What a provider's answers mean lives in its module.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from encryption_keys.envelope import ERROR_CODES, ErrorCode
from encryption_keys.models import KeyStatus
from encryption_keys.providers import InvalidKeyRef, KeyHealth, KeyServiceError, provider_for, remedy_for

#: Statuses where the key no longer decrypts: cached DEKs wrapped by it must go.
REVOKED = frozenset({KeyStatus.DISABLED, KeyStatus.PENDING_DELETION, KeyStatus.ACCESS_DENIED, KeyStatus.NOT_FOUND})
#: Statuses that earn an organization-wide banner.
UNHEALTHY = REVOKED | {KeyStatus.UNREACHABLE}

#: The status a linked key takes when the key service answers a code (read from `envelope.ERROR_CODES`).
STATUS_OF_ERROR = {code: KeyStatus(facts.key_status) for code, facts in ERROR_CODES.items() if facts.key_status}

AFFECTED_DATA = "Debugger payload captures, Debugger request logs and Config Store (vault) secrets"

#: The code behind each unhealthy status (the first code giving it), whose remedy the banner shows.
CODE_OF_STATUS = {status: code for code, status in reversed(STATUS_OF_ERROR.items())}
#: What an Organization Admin does about a key in each unhealthy status, in provider-neutral words.
WHAT_TO_DO = {status: ERROR_CODES[code].remedy for status, code in CODE_OF_STATUS.items()}


def revocation_bound_seconds() -> int:
    return int(settings.DATAKEY_CACHE_TTL)


def days_left(deletion_date: datetime | None) -> int | None:
    if deletion_date is None:
        return None
    return max(0, math.ceil((deletion_date - timezone.now()).total_seconds() / 86400))


def encryption_context(*, organization_id, region: str, purpose: str) -> dict[str, str]:
    """The context every platform call carries; a fresh `konnect:datakey` for a probe."""
    return {
        "konnect:org": str(organization_id),
        "konnect:region": region,
        "konnect:purpose": purpose,
        "konnect:datakey": str(uuid.uuid4()),
    }


def prove_key_use(*, key_ref: str, organization_id, region: str, purpose: str) -> None:
    """Generate a data key, then decrypt it, with the organization's context: proves the key service lets the
    platform use the key for this organization.

    Raises KeyServiceError with `operation` set to the call the key service refused; the data key is thrown away
    at once.
    """
    provider = provider_for(key_ref)
    context = encryption_context(organization_id=organization_id, region=region, purpose=purpose)
    operation = "GenerateDataKey"
    try:
        plaintext, wrapped = provider.generate_data_key(key_ref=key_ref, context=context,
                                                        organization_id=organization_id)
        operation = "Decrypt"
        unwrapped = provider.decrypt(key_ref=key_ref, wrapped=wrapped, context=context, organization_id=organization_id)
    except KeyServiceError as error:
        error.operation = operation
        raise
    if unwrapped != plaintext:
        error = KeyServiceError(ErrorCode.INTEGRITY, key_ref=key_ref, detail="Decrypt returned another data key")
        error.operation = operation
        raise error


def read_key_health(*, key_ref: str, organization_id, region: str, previous_metadata: dict | None = None) -> KeyHealth:
    """The full check ("Check now", `check_keys`, a re-check after a failure), by the key's provider."""
    try:
        provider = provider_for(key_ref)
    except InvalidKeyRef as invalid:
        return KeyHealth(KeyStatus.NOT_FOUND, error=invalid.reason[:500])
    return provider.read_health(key_ref=key_ref, organization_id=organization_id, region=region,
                                previous_metadata=previous_metadata)


def read_key_state(*, key_ref: str, organization_id=None, previous_metadata: dict | None = None) -> KeyHealth:
    """The scheduled sweep's reading: one cheap call per key, by the key's provider."""
    try:
        provider = provider_for(key_ref)
    except InvalidKeyRef as invalid:
        return KeyHealth(KeyStatus.NOT_FOUND, error=invalid.reason[:500])
    return provider.read_state(key_ref=key_ref, organization_id=organization_id, previous_metadata=previous_metadata)


def advice_for(key, *, manages_keys: bool) -> str:
    """What the reader does about ``key``'s unhealthy status: an Org Admin gets the key provider's remedy (its
    console, its commands); anyone else is told whom to ask, or the remedy when nobody needs asking."""
    code = CODE_OF_STATUS[key.status]
    if manages_keys:
        return remedy_for(code, key_ref=key.key_ref)
    return ERROR_CODES[code].action_for(manages_keys=False)


def banner_for(key, *, link: str | None, manages_keys: bool) -> dict:
    """The organization-wide banner of an unhealthy key, with advice for the reader's role."""
    region = key.get_region_display()
    if key.status == KeyStatus.PENDING_DELETION and key.deletion_date:
        left = days_left(key.deletion_date)
        title = f"Encryption key “{key.name}” ({region}) is scheduled for deletion on {key.deletion_date:%Y-%m-%d} ({left} day{'' if left == 1 else 's'} left)."
    else:
        title = f"Encryption key “{key.name}” ({region}): {key.get_status_display().lower()}."
    if key.status == KeyStatus.UNREACHABLE:
        message = f"{AFFECTED_DATA} of the {region} region may be unreadable until it is reachable again."
    else:
        message = f"{AFFECTED_DATA} of the {region} region protected by this key cannot be decrypted."
    return {
        "level": "warning" if key.status == KeyStatus.UNREACHABLE else "error",
        "title": title,
        "message": f"{message} {advice_for(key, manages_keys=manages_keys)}",
        "link": link,
        "link_label": "Open the key" if link else "",
    }

