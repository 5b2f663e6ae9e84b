"""Pure-Python envelope-encryption core: no Django, no key-service SDK (DESIGN.md §3, §5; bytes in docs/envelope.md).

Layers, one module each: ``errors`` (typed, coded failures), ``format`` (the binary envelope, v1 and v2),
``binding`` (what a value is bound to: the data key's scope and the row, i.e. the AAD), ``cipher``
(AES-256-GCM under one data key) and ``cache`` (unwrapped data keys held for the revocation bound).
"""

from .binding import KeyScope, aad_for, aad_v1
from .cache import DataKeyCache
from .cipher import KEY_SIZE, DataKeyCipher
from .errors import (
    ERROR_CODES,
    CodeFacts,
    DecryptionError,
    EncryptionUnavailable,
    EnvelopeError,
    ErrorCode,
    ScopeMismatch,
)
from .format import (
    CURRENT_VERSION,
    HEADER_SIZE,
    NONCE_SIZE,
    OVERHEAD,
    TAG_SIZE,
    VERSION_V1,
    VERSION_V2,
    Envelope,
    pack,
    parse,
    peek_dek_id,
    peek_version,
)

__all__ = [
    "CURRENT_VERSION",
    "ERROR_CODES",
    "HEADER_SIZE",
    "KEY_SIZE",
    "NONCE_SIZE",
    "OVERHEAD",
    "TAG_SIZE",
    "VERSION_V1",
    "VERSION_V2",
    "CodeFacts",
    "DataKeyCache",
    "DataKeyCipher",
    "DecryptionError",
    "EncryptionUnavailable",
    "Envelope",
    "EnvelopeError",
    "ErrorCode",
    "KeyScope",
    "ScopeMismatch",
    "aad_for",
    "aad_v1",
    "pack",
    "parse",
    "peek_dek_id",
    "peek_version",
]
