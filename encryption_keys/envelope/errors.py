"""Typed envelope-encryption errors with stable codes (DESIGN.md §5).

Each error carries a stable ``code`` used alike by the UI, the API and the logs,
a short ``title``, a user-facing ``message`` saying what the customer can do,
and whether retrying helps. ``detail`` is for operators and must never contain
plaintext.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Self


class ErrorCode(enum.StrEnum):
    """Stable error codes shared by the UI, the API and the logs."""

    KEY_DISABLED = "key_disabled"
    KEY_PENDING_DELETION = "key_pending_deletion"
    KEY_ACCESS_DENIED = "key_access_denied"
    KEY_NOT_FOUND = "key_not_found"
    KMS_UNAVAILABLE = "kms_unavailable"
    DATA_KEY_SHREDDED = "data_key_shredded"
    INTEGRITY = "integrity"


@dataclass(frozen=True, slots=True)
class _Explanation:
    """What one error code means to a person, and whether a retry helps."""

    title: str
    message: str  # may contain "{when}", filled with " on <date>" or ""
    retryable: bool
    retry_hint: str


_EXPLANATIONS: dict[ErrorCode, _Explanation] = {
    ErrorCode.KEY_DISABLED: _Explanation(
        title="Key disabled",
        message=(
            "The organization's encryption key is disabled in AWS KMS, so this data "
            "cannot be decrypted. Re-enable the key in AWS KMS to restore access."
        ),
        retryable=False,
        retry_hint="after the customer re-enables the key",
    ),
    ErrorCode.KEY_PENDING_DELETION: _Explanation(
        title="Key pending deletion",
        message=(
            "The organization's encryption key is scheduled for deletion{when}, so this "
            "data cannot be decrypted. Cancel the key deletion in AWS KMS before then "
            "to keep the data; afterwards it is lost for good."
        ),
        retryable=False,
        retry_hint="only if the customer cancels the key deletion",
    ),
    ErrorCode.KEY_ACCESS_DENIED: _Explanation(
        title="Key access denied",
        message=(
            "The key policy of the organization's encryption key no longer lets the "
            "platform use it. Restore the platform statement in the key policy."
        ),
        retryable=False,
        retry_hint="after the customer fixes the key policy",
    ),
    ErrorCode.KEY_NOT_FOUND: _Explanation(
        title="Key not found",
        message=(
            "The encryption key that protects this data no longer exists in AWS KMS. "
            "The data cannot be recovered."
        ),
        retryable=False,
        retry_hint="no — the data is lost",
    ),
    ErrorCode.KMS_UNAVAILABLE: _Explanation(
        title="Key service unavailable",
        message=(
            "AWS KMS could not be reached or is throttling requests. "
            "This is usually temporary; try again in a moment."
        ),
        retryable=True,
        retry_hint="yes, automatically",
    ),
    ErrorCode.DATA_KEY_SHREDDED: _Explanation(
        title="Data key shredded",
        message=(
            "The data key for this data was deliberately destroyed (crypto-shredded). "
            "The data cannot be recovered."
        ),
        retryable=False,
        retry_hint="no — the data was shredded",
    ),
    ErrorCode.INTEGRITY: _Explanation(
        title="Integrity check failed",
        message=(
            "This value failed its integrity check: it was altered, damaged, or copied "
            "from another record. It cannot be decrypted."
        ),
        retryable=False,
        retry_hint="no",
    ),
}


class EnvelopeError(Exception):
    """Base class for every encryption or decryption failure with a stable code."""

    def __init__(
        self,
        code: ErrorCode | str,
        *,
        key_arn: str | None = None,
        deletion_date: datetime | None = None,
        detail: str = "",
    ) -> None:
        self.code = ErrorCode(code)
        self.key_arn = key_arn
        self.deletion_date = deletion_date
        self.detail = detail
        super().__init__(self.code)

    @classmethod
    def from_error(cls, other: EnvelopeError) -> Self:
        """Return a new ``cls`` instance carrying the same fields as ``other``."""
        return cls(
            other.code,
            key_arn=other.key_arn,
            deletion_date=other.deletion_date,
            detail=other.detail,
        )

    @property
    def title(self) -> str:
        return _EXPLANATIONS[self.code].title

    @property
    def message(self) -> str:
        when = f" on {self.deletion_date:%Y-%m-%d}" if self.deletion_date else ""
        return _EXPLANATIONS[self.code].message.format(when=when)

    @property
    def retryable(self) -> bool:
        """True only when retrying helps without anyone acting (``kms_unavailable``)."""
        return _EXPLANATIONS[self.code].retryable

    @property
    def retry_hint(self) -> str:
        return _EXPLANATIONS[self.code].retry_hint

    def __str__(self) -> str:
        text = f"{self.code}: {self.title}"
        return f"{text} ({self.detail})" if self.detail else text


class DecryptionError(EnvelopeError):
    """A read failed: the value cannot be turned back into plaintext."""


class EncryptionUnavailable(EnvelopeError):
    """A write could not obtain a data key; nothing may be stored."""


class ScopeMismatch(DecryptionError):
    """A value names a data key of another organization, region, purpose or scope than its row's: the row
    (or a parent of it) was moved. Always ``integrity``; carries both scopes (never plaintext) for the
    security event, and is never cached.
    """

    def __init__(self, *, dek_id: object, key_scope: object, row_scope: object, differences: tuple[str, ...]) -> None:
        what = ", ".join(differences) or "scope"
        super().__init__(
            ErrorCode.INTEGRITY,
            detail=f"data key {dek_id} belongs to another {what} than the row (moved row or parent)",
        )
        self.dek_id = dek_id
        self.key_scope = key_scope
        self.row_scope = row_scope
        self.differences = differences
