"""Typed envelope-encryption errors with stable codes (DESIGN.md §5), and the one home of what each code means.

Each error carries a stable ``code`` used alike by the UI, the API and the logs,
a short ``title``, a user-facing ``message`` saying what the customer can do,
and whether retrying helps. ``detail`` is for operators and must never contain
plaintext.

``ERROR_CODES`` is the single table every page, card, banner, checklist and API response reads: the copy,
what an Organization Admin does (``remedy``) and what anyone else does (``ask``), the key status the code
puts a linked key in, the HTTP status of an API answer and whether it carries ``Retry-After``. Adding a
code means adding one entry here; ``tests/encryption_keys/test_error_codes.py`` walks every code through
every reader. Pure data: no Django, so the envelope core stays importable alone.
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


#: Seconds an API client waits before retrying a retryable code (the only ones that carry ``Retry-After``).
RETRY_AFTER_SECONDS = 5
#: The HTTP status of an answer refused for a code no retry can fix: the request conflicts with the state of
#: the organization's key (or of the data). Never ``Retry-After``: a client honouring it would retry forever.
PERMANENT_STATUS = 409
#: The HTTP status of an answer refused for a code that clears by itself (``kms_unavailable``).
RETRYABLE_STATUS = 503


@dataclass(frozen=True, slots=True)
class CodeFacts:
    """Everything one error code means: to a person, to the key's status, and to an API client."""

    title: str
    message: str  # may contain "{when}", filled with " on <date>" or ""
    retryable: bool
    retry_hint: str
    #: What an Organization Admin (who manages the key) does, in provider-neutral words; a key provider's
    #: ``remedy()`` replaces it with its own (its console, its commands) when the key is known.
    remedy: str
    #: What any other role does (a Debug Session Creator, a Vault Admin…); "" when it is the remedy (nobody can act).
    ask: str = ""
    #: The ``KeyStatus`` value a linked key takes when the key service answers this code; "" when the key is not
    #: at fault (a shredded data key).
    key_status: str = ""
    #: True when someone's action (the remedy) makes the data readable again; a retryable code clears by itself.
    recoverable: bool = False

    @property
    def http_status(self) -> int:
        return RETRYABLE_STATUS if self.retryable else PERMANENT_STATUS

    @property
    def retry_after(self) -> int | None:
        """Seconds for ``Retry-After``, only on codes that clear by themselves."""
        return RETRY_AFTER_SECONDS if self.retryable else None

    def action_for(self, *, manages_keys: bool) -> str:
        """What the person reading can do: the remedy for an Organization Admin, else whom to ask."""
        return self.remedy if manages_keys or not self.ask else self.ask


ERROR_CODES: dict[ErrorCode, CodeFacts] = {
    ErrorCode.KEY_DISABLED: CodeFacts(
        title="Key disabled",
        message=(
            "The organization's encryption key is disabled in the key service, so this data "
            "cannot be decrypted. Re-enabling the key restores access; nothing is lost."
        ),
        retryable=False,
        retry_hint="after the customer re-enables the key",
        remedy="Re-enable the key in the key service that holds it.",
        ask="Ask an Organization Admin of your organization to re-enable the encryption key.",
        key_status="disabled",
        recoverable=True,
    ),
    ErrorCode.KEY_PENDING_DELETION: CodeFacts(
        title="Key pending deletion",
        message=(
            "The organization's encryption key is scheduled for deletion{when}, so this "
            "data cannot be decrypted. Cancelling the deletion before then keeps the data; "
            "afterwards it is lost for good."
        ),
        retryable=False,
        retry_hint="only if the customer cancels the key deletion",
        remedy=(
            "Cancel the key deletion in the key service and re-enable the key before the deletion date; after it, "
            "the data is gone for good."
        ),
        ask=(
            "Ask an Organization Admin of your organization to cancel the key deletion before the deletion date; "
            "after it, the data is gone for good."
        ),
        key_status="pending_deletion",
        recoverable=True,
    ),
    ErrorCode.KEY_ACCESS_DENIED: CodeFacts(
        title="Key access denied",
        message=(
            "The key policy of the organization's encryption key no longer lets the "
            "platform use it, so this data cannot be decrypted."
        ),
        retryable=False,
        retry_hint="after the customer fixes the key policy",
        remedy=(
            "Restore the platform's access to the key in the key service (Organization settings → Encryption keys "
            "shows what to grant)."
        ),
        ask="Ask an Organization Admin of your organization to restore the platform's access in the key policy.",
        key_status="access_denied",
        recoverable=True,
    ),
    ErrorCode.KEY_NOT_FOUND: CodeFacts(
        title="Key not found",
        message=(
            "The encryption key that protects this data no longer exists in the key service. "
            "The data cannot be recovered."
        ),
        retryable=False,
        retry_hint="no — the data is lost",
        remedy="Nothing can bring this data back: the key no longer exists in the key service.",
        key_status="not_found",
    ),
    ErrorCode.KMS_UNAVAILABLE: CodeFacts(
        title="Key service unavailable",
        message=(
            "The key service could not be reached or is throttling requests. "
            "This is usually temporary; try again in a moment."
        ),
        retryable=True,
        retry_hint="yes, automatically",
        remedy=(
            "Try again in a moment: it is usually temporary. If it lasts, check the status of the key service "
            "where the key lives."
        ),
        key_status="unreachable",
    ),
    ErrorCode.DATA_KEY_SHREDDED: CodeFacts(
        title="Data key shredded",
        message=(
            "The data key for this data was deliberately destroyed (crypto-shredded). "
            "The data cannot be recovered."
        ),
        retryable=False,
        retry_hint="no — the data was shredded",
        remedy=(
            "Nothing: the data was destroyed on purpose (its session or store was deleted, or retention expired) "
            "and cannot be recovered."
        ),
    ),
    ErrorCode.INTEGRITY: CodeFacts(
        title="Integrity check failed",
        message=(
            "This value failed its integrity check: it was altered, damaged, or copied "
            "from another record. It cannot be decrypted."
        ),
        retryable=False,
        retry_hint="no",
        remedy="Nothing can restore this value. If you see this on many values, contact support.",
        # A key that returns a data key which does not decrypt back to itself is not usable by the platform.
        key_status="access_denied",
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
    def facts(self) -> CodeFacts:
        """This error's entry of ``ERROR_CODES``."""
        return ERROR_CODES[self.code]

    @property
    def title(self) -> str:
        return ERROR_CODES[self.code].title

    @property
    def message(self) -> str:
        when = f" on {self.deletion_date:%Y-%m-%d}" if self.deletion_date else ""
        return ERROR_CODES[self.code].message.format(when=when)

    @property
    def retryable(self) -> bool:
        """True only when retrying helps without anyone acting (``kms_unavailable``)."""
        return ERROR_CODES[self.code].retryable

    @property
    def retry_hint(self) -> str:
        return ERROR_CODES[self.code].retry_hint

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
