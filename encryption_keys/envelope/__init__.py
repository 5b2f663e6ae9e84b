"""Pure-Python envelope-encryption core: no Django, no boto3 (DESIGN.md §3, §5).

Layers, one module each: ``errors`` (typed, coded failures), ``format`` (the v1
binary envelope), ``cipher`` (AES-256-GCM under one data key) and ``cache``
(unwrapped data keys held for the revocation bound).
"""

from .cache import DataKeyCache
from .cipher import KEY_SIZE, DataKeyCipher, aad_for
from .errors import DecryptionError, EncryptionUnavailable, EnvelopeError, ErrorCode
from .format import (
    HEADER_SIZE,
    NONCE_SIZE,
    OVERHEAD,
    TAG_SIZE,
    VERSION_V1,
    Envelope,
    pack,
    parse,
    peek_dek_id,
)

__all__ = [
    "HEADER_SIZE",
    "KEY_SIZE",
    "NONCE_SIZE",
    "OVERHEAD",
    "TAG_SIZE",
    "VERSION_V1",
    "DataKeyCache",
    "DataKeyCipher",
    "DecryptionError",
    "EncryptionUnavailable",
    "Envelope",
    "EnvelopeError",
    "ErrorCode",
    "aad_for",
    "pack",
    "parse",
    "peek_dek_id",
]
