"""The key-provider seam: what the platform asks of a customer's key service, whichever it is.

Like Django's password hashers or session engines: one small interface, a registry of implementations
(``settings.KEY_PROVIDERS``, a list of dotted class paths), and the linked key's reference (``key_ref``)
choosing which one answers. Nothing outside a provider's own module knows its wire, its SDK, its
reference syntax or its error names; everything else speaks ``key_ref`` strings, our ``ErrorCode``s and the
types below.

A ``key_ref`` is the full, provider-recognisable text the Org Admin pasted, normalised by ``parse``:
- AWS KMS: a key ARN, ``arn:aws:kms:<aws-region>:<account>:key/<key id>`` (aliases refused);
- OpenBao / HashiCorp Vault Transit: ``transit+https://<host>:<port>/<mount>/keys/<name>``
  (``transit+http://`` only for loopback dev servers), see ``providers/transit.py``.

Every method is keyword-only and thread-safe; providers keep their clients per process.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from django.core.exceptions import ImproperlyConfigured

from encryption_keys.envelope import EnvelopeError, ErrorCode

if TYPE_CHECKING:
    from encryption_keys.verification import Checklist


class KeyServiceError(EnvelopeError):
    """A call to the key service failed. ``code`` is ours (what it means for the data); ``provider_code`` is the
    key service's own name for the failure (``AccessDeniedException``, ``permission denied``…), for operators.
    ``operation`` is set by callers that need to say which call was refused."""

    def __init__(self, code: ErrorCode, *, provider_code: str = "", **kwargs):
        super().__init__(code, **kwargs)
        self.provider_code = provider_code
        self.operation = ""


class ProviderNotConfigured(ImproperlyConfigured):
    """No call to the key service can succeed until the operator sets what the message names (credentials, an
    address): not a key's health, so it is not a KeyServiceError and no key's status changes for it."""


class InvalidKeyRef(ValueError):
    """The text is not a usable reference for this provider; ``reason`` says why in words a person can act on."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class KeyRef:
    """A parsed, normalised key reference."""

    ref: str  # the normalised text stored as key_ref
    provider: str  # KeyProvider.name
    #: Which key this is, however it is addressed (AWS: partition:account:key id, shared by multi-region
    #: siblings; Transit: server address + mount + name). One link per identity in the installation.
    identity: str
    #: Where the key lives, for people and the call log (an AWS region; a Transit server's host).
    location: str


@dataclass
class KeyHealth:
    """One reading of a linked key. ``status`` is a ``KeyStatus`` value; ``metadata`` is the JSON-safe snapshot
    kept on the EncryptionKey (provider-specific keys; ``metadata_rows`` renders it)."""

    status: str
    metadata: dict = field(default_factory=dict)
    deletion_date: datetime | None = None
    error: str = ""


@dataclass(frozen=True)
class AccessStatement:
    """What the Org Admin grants the platform on the key service: shown on the link page with a copy button."""

    title: str  # "Key policy statements", "Transit policy"
    language: str  # "json", "hcl"
    text: str
    instructions: str  # where to put it, in the provider's words
    notes: tuple[str, ...] = ()  # why each part is there (shown as a list under the instructions)


class KeyProvider(ABC):
    #: Stored in EncryptionKey.provider / DataKey.wrapping_provider; never changes once released.
    name: ClassVar[str]
    #: For people: "AWS KMS", "OpenBao / Vault Transit".
    label: ClassVar[str]
    #: The form field's label and an example reference, for the link page.
    ref_label: ClassVar[str]
    ref_example: ClassVar[str]

    # --- references -------------------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def recognises(cls, text: str) -> bool:
        """Whether ``text`` is written in this provider's reference form (a cheap prefix test: the registry
        asks each provider in turn; ``parse`` then validates fully)."""

    @abstractmethod
    def parse(self, text: str) -> KeyRef:
        """Validate and normalise; raises InvalidKeyRef."""

    def identity(self, key_ref: str) -> str:
        """The identity of a stored reference; text that does not parse stands for itself."""
        try:
            return self.parse(key_ref).identity
        except InvalidKeyRef:
            return (key_ref or "").strip()

    def sibling_refs(self, key_ref: str) -> list[str]:
        """Every reference that names the same key (AWS: a multi-region key in each region a data key's wrapping
        key can be in): data keys wrapped under any of them are data of the key's owner."""
        return [key_ref]

    # --- configuration ----------------------------------------------------------------------------------
    def configuration_problem(self) -> str | None:
        """What the operator must set before any call can succeed (one line), or None."""
        return None

    def settings_problem(self) -> str | None:
        """What is wrong in this provider's own settings, read without calling anything (one line), or None.
        Reported by Django's system checks (``manage.py check``, ``migrate``), so a malformed setting stops a
        deployment before the first key is linked."""
        return None

    def reset_clients(self) -> None:  # noqa: B027 - optional: a provider without cached clients has nothing to do
        """Forget cached clients (tests, a settings change)."""

    # --- the data path --------------------------------------------------------------------------------------
    # ``context`` is the organization's encryption context (DataKey.encryption_context()): every provider binds
    # the wrapped data key to it, so a wrapped key moved to another organization, region, purpose or data key
    # id does not unwrap. Failures raise KeyServiceError with our code.
    @abstractmethod
    def generate_data_key(self, *, key_ref: str, context: dict[str, str], organization_id=None) -> tuple[bytes, bytes]:
        """A fresh 32-byte data key: (plaintext, wrapped)."""

    @abstractmethod
    def decrypt(self, *, key_ref: str, wrapped: bytes, context: dict[str, str], organization_id=None) -> bytes:
        """Unwrap a data key this provider wrapped under ``key_ref``."""

    @abstractmethod
    def encrypt(self, *, key_ref: str, plaintext: bytes, context: dict[str, str], organization_id=None) -> bytes:
        """Wrap the given data key (the long way of a re-wrap, and re-wraps across providers)."""

    def rewrap(self, *, source_ref: str, destination_ref: str, wrapped: bytes, context: dict[str, str],
               organization_id=None) -> bytes | None:
        """Re-wrap inside the key service, the data key never leaving it (AWS ReEncrypt; Transit ``rewrap`` to
        the latest version of the same key). None when the service cannot do this pair: the caller
        (``lifecycle/rewrap.py``) then decrypts with the source provider and encrypts with the destination's."""
        return None

    # --- health and linking -------------------------------------------------------------------------------
    @abstractmethod
    def read_state(self, *, key_ref: str, organization_id=None, previous_metadata: dict | None = None) -> KeyHealth:
        """The scheduled sweep's reading: one cheap call per key (no data key round trip)."""

    @abstractmethod
    def read_health(self, *, key_ref: str, organization_id, region: str,
                    previous_metadata: dict | None = None) -> KeyHealth:
        """The full check: metadata, and a data-key round trip with the organization's context.
        ``previous_metadata`` is the stored snapshot, as for ``read_state`` (Transit carries facts forward)."""

    @abstractmethod
    def verify(self, *, organization, region: str, key_ref: str) -> Checklist:
        """The pre-link checklist of this provider (verification.Checklist): ordered checks, stopping at the
        first blocking failure, linking allowed when none fails."""

    @abstractmethod
    def access_statement(self, organization, *, key_ref: str | None = None) -> AccessStatement:
        """What the Org Admin grants the platform, pinned to this organization where the service allows, and to
        the key ``key_ref`` names when it is known (Transit's policy names the key's paths)."""

    def remedy(self, code: ErrorCode) -> str:
        """What an Org Admin does about ``code`` on this key service ("Enable the key in AWS KMS", "Lower the
        key's min_decryption_version"…); "" to use the provider-neutral remedy of ``ERROR_CODES``."""
        return ""

    def metadata_rows(self, metadata: dict) -> list[tuple[str, str]]:
        """The key page's facts about the key, from the stored snapshot: (label, value) pairs (automatic rotation
        is shown by the page itself, from ``metadata["rotation_enabled"]``)."""
        return []
