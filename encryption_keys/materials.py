"""Envelope materials (Kong's `POST /materials/encryption` and `/materials/decryption`): data keys for a customer's
own in-app encryption, generated and unwrapped by KMS under the organization's CMEK of the API's region.

Nothing of a material is stored or logged: the plaintext data key goes from KMS to the response body and nowhere
else; the wrapped key is the caller's to keep. Every KMS call is in the key-usage log (kms.py), with the
encryption context below, which binds a wrapped key to its organization and region: a key wrapped for another
organization (or region) fails KMS's own check on Decrypt (`integrity`), whichever key it names.

Only system accounts holding the Envelope Materials role may call these (the API checks), and each organization
has a budget of calls per window, shared by every process through the cache (`rate_limit`).
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache

from encryption_keys import key_state
from encryption_keys.envelope import ErrorCode
from encryption_keys.models import EncryptionKey
from encryption_keys.providers import KeyServiceError, provider_for
from konnect_admin.models import Organization

logger = logging.getLogger(__name__)

PURPOSE = "envelope.materials"
# KMS ciphertext blobs are at most 6144 bytes.
MAX_WRAPPED_BYTES = 6144


class MaterialsRefused(Exception):
    """A 4xx the caller can fix: `field`/`source`/`rule` name the parameter for `invalid_parameters`."""

    def __init__(self, detail: str, *, field: str, source: str = "body", rule: str = "invalid", status: int = 400):
        super().__init__(detail)
        self.detail, self.field, self.source, self.rule, self.status = detail, field, source, rule, status


class RateLimited(Exception):
    def __init__(self, retry_after: int, limit: int, window: int):
        super().__init__(f"more than {limit} envelope-material calls in {window} seconds")
        self.retry_after, self.limit, self.window = retry_after, limit, window


class RateLimitUnavailable(Exception):
    """The shared cache that counts calls could not be reached: refuse (503) rather than serve unmetered."""


def encryption_context(*, organization_id, region: str) -> dict[str, str]:
    return {"konnect:org": str(organization_id), "konnect:region": region, "konnect:purpose": PURPOSE}


def rate_limit(*, organization: Organization) -> None:
    """Count one call against the organization's budget: ENVELOPE_MATERIALS_RATE_LIMIT calls per fixed window of
    ENVELOPE_MATERIALS_RATE_WINDOW_SECONDS, counted in the shared cache (every process and server alike)."""
    limit = int(settings.ENVELOPE_MATERIALS_RATE_LIMIT)
    window = int(settings.ENVELOPE_MATERIALS_RATE_WINDOW_SECONDS)
    now = time.time()
    window_start = int(now // window) * window
    counter = f"encryption_keys:materials-rate:{organization.pk}:{window_start}"
    try:
        cache.add(counter, 0, timeout=window + 5)
        count = cache.incr(counter)
    except ValueError:  # the counter expired between add and incr: this call opens it again
        cache.add(counter, 1, timeout=window + 5)
        count = 1
    except Exception as error:  # noqa: BLE001 - any cache failure: refuse, never serve unmetered
        logger.warning("envelope materials: the rate-limit counter is unavailable (%s)", type(error).__name__)
        raise RateLimitUnavailable from None
    if count > limit:
        raise RateLimited(max(1, math.ceil(window_start + window - now)), limit, window)


def _wrapping_key(*, organization: Organization, region: str, cmek_id: str) -> EncryptionKey:
    if cmek_id != EncryptionKey.API_ID:
        raise MaterialsRefused(f"No CMEK {cmek_id!r}: the only CMEK id is 'default'.", field="X-Konnect-CMEK-Id",
                               source="header", rule="enum")
    key = EncryptionKey.objects.filter(organization=organization, region=region).first()
    if key is None:
        raise MaterialsRefused(
            f"No CMEK is linked in the {region} region: link one (PUT /cmeks/default) before asking for envelope "
            "materials.", field="X-Konnect-CMEK-Id", source="header")
    return key


# What Decrypt answers for a ciphertext that is not ours to open: another organization's or region's (KMS
# checks the encryption context, and a key of another region is AccessDenied, as in AWS), or garbage.
_NOT_THIS_ORGANIZATIONS = frozenset({ErrorCode.INTEGRITY, ErrorCode.KEY_ACCESS_DENIED, ErrorCode.KEY_NOT_FOUND})


def encryption_material(*, organization: Organization, region: str, cmek_id: str = EncryptionKey.API_ID) -> dict:
    """A fresh AES-256 data key from GenerateDataKey: both halves base64-encoded, as Kong's schema says."""
    key = _wrapping_key(organization=organization, region=region, cmek_id=cmek_id)
    try:
        plaintext, wrapped = provider_for(key.key_arn).generate_data_key(
            key_ref=key.key_arn, context=encryption_context(organization_id=organization.pk, region=region),
            organization_id=organization.pk)
    except KeyServiceError as error:
        # No caller input reached KMS: a key-state error here is about the key (key_state.py).
        key_state.observed_failure(key_arn=key.key_arn, error=error, operation="GenerateDataKey")
        raise
    key_state.observed_success(key_arn=key.key_arn)
    return {"encrypted_data_key": base64.b64encode(wrapped).decode(),
            "plaintext_data_key": base64.b64encode(plaintext).decode()}


def decryption_material(*, organization: Organization, region: str, encrypted_data_key: str) -> dict:
    """The plaintext of a data key that `encryption_material` wrapped for this organization and region.

    The ciphertext is the caller's, so what Decrypt says about it is never taken as news about the key's health
    (a forged blob must not mark the organization's CMEK "access denied"); a refusal is a 400 unless the key's
    stored status already says the key itself is unusable (then the usual 409 of that status)."""
    try:
        wrapped = base64.b64decode(encrypted_data_key.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise MaterialsRefused("encrypted_data_key is not valid base64.", field="encrypted_data_key",
                               rule="is_base64") from None
    if not wrapped or len(wrapped) > MAX_WRAPPED_BYTES:
        raise MaterialsRefused(f"encrypted_data_key must decode to 1 to {MAX_WRAPPED_BYTES} bytes.",
                               field="encrypted_data_key")
    key = _wrapping_key(organization=organization, region=region, cmek_id=EncryptionKey.API_ID)
    try:
        plaintext = provider_for(key.key_arn).decrypt(
            key_ref=key.key_arn, wrapped=wrapped,
            context=encryption_context(organization_id=organization.pk, region=region),
            organization_id=organization.pk)
    except KeyServiceError as error:
        if error.code not in _NOT_THIS_ORGANIZATIONS or not key.is_usable:
            raise
        raise MaterialsRefused(
            "encrypted_data_key was not issued to this organization in this region under its current CMEK, or is "
            "damaged.", field="encrypted_data_key") from None
    return {"plaintext_data_key": base64.b64encode(plaintext).decode()}
