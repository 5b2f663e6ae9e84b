"""The binary layout of one encrypted value (DESIGN.md §3; exact bytes in docs/envelope.md).

    version (1 byte) | dek id (16 bytes, UUID) | nonce (12 bytes) | ciphertext + GCM tag (>= 16 bytes)

Version 0x02 is written today; 0x01 (the legacy v1) is still read. Both share this layout and differ only
in the AAD the value was sealed with (``binding.py``). The leading byte makes the format self-describing,
so versions coexist. ``parse`` treats its input as hostile: any malformed blob raises
``DecryptionError(ErrorCode.INTEGRITY)`` and nothing else.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass

from .errors import DecryptionError, ErrorCode

VERSION_V1 = 1
VERSION_V2 = 2
CURRENT_VERSION = VERSION_V2
VERSIONS = frozenset((VERSION_V1, VERSION_V2))
DEK_ID_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 16
HEADER_SIZE = 1 + DEK_ID_SIZE + NONCE_SIZE  # 29
OVERHEAD = HEADER_SIZE + TAG_SIZE  # 45 bytes added to every plaintext

_DEK_ID_END = 1 + DEK_ID_SIZE
_BytesLike = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class Envelope:
    """One parsed envelope; ``ciphertext`` includes the trailing GCM tag."""

    version: int
    dek_id: uuid.UUID
    nonce: bytes
    ciphertext: bytes


def pack(*, dek_id: uuid.UUID, nonce: bytes, ciphertext: bytes, version: int = CURRENT_VERSION) -> bytes:
    """Serialize an envelope (v2 unless told). Raises ``ValueError`` on a programming mistake."""
    if version not in VERSIONS:
        raise ValueError(f"unknown envelope version {version!r}")
    if not isinstance(dek_id, uuid.UUID):
        raise ValueError(f"dek_id must be a uuid.UUID, not {type(dek_id).__name__}")
    if not isinstance(nonce, bytes) or len(nonce) != NONCE_SIZE:
        raise ValueError(f"nonce must be {NONCE_SIZE} bytes")
    if not isinstance(ciphertext, bytes) or len(ciphertext) < TAG_SIZE:
        raise ValueError(f"ciphertext must be bytes including the {TAG_SIZE}-byte tag")
    return bytes((version,)) + dek_id.bytes + nonce + ciphertext


def parse(blob: _BytesLike) -> Envelope:
    """Parse a stored value into an ``Envelope``; malformed input is an integrity error."""
    data = _checked_bytes(blob)
    return Envelope(
        version=data[0],
        dek_id=uuid.UUID(bytes=data[1:_DEK_ID_END]),
        nonce=data[_DEK_ID_END:HEADER_SIZE],
        ciphertext=data[HEADER_SIZE:],
    )


def peek_dek_id(blob: _BytesLike) -> uuid.UUID:
    """Read only the data-key id from the header, e.g. to group values by DEK."""
    if type(blob) is bytes and len(blob) >= OVERHEAD and blob[0] in VERSIONS:  # hot path, same checks
        return _dek_uuid(blob[1:_DEK_ID_END])
    return _dek_uuid(_checked_bytes(blob)[1:_DEK_ID_END])


def peek_version(blob: _BytesLike) -> int:
    """The version byte of a well-formed envelope (1 or 2); malformed input is an integrity error."""
    if type(blob) is bytes and len(blob) >= OVERHEAD and blob[0] in VERSIONS:
        return blob[0]
    return _checked_bytes(blob)[0]


@functools.lru_cache(maxsize=4096)
def _dek_uuid(raw: bytes) -> uuid.UUID:
    # Memoized: few distinct data keys, many values; building a UUID costs more than the lookup.
    return uuid.UUID(bytes=raw)


def _checked_bytes(blob: object) -> bytes:
    """Return ``blob`` as bytes with a known version and room for the tag, or raise."""
    data = _as_bytes(blob)
    if not data:
        raise _malformed("envelope is empty")
    if data[0] not in VERSIONS:
        raise _malformed(f"unknown envelope version {data[0]}")
    if len(data) < OVERHEAD:
        raise _malformed(f"envelope is {len(data)} bytes, shorter than the minimum {OVERHEAD}")
    return data


def _as_bytes(blob: object) -> bytes:
    if isinstance(blob, bytes):
        return blob
    if not isinstance(blob, bytearray | memoryview):
        raise _malformed(f"envelope must be bytes-like, not {type(blob).__name__}")
    try:
        return bytes(blob)
    except (ValueError, TypeError, BufferError) as exc:  # e.g. a released memoryview
        raise _malformed(f"unreadable buffer: {exc}") from exc


def _malformed(detail: str) -> DecryptionError:
    return DecryptionError(ErrorCode.INTEGRITY, detail=detail)
