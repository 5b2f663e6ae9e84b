"""AES-256-GCM sealing and opening of field values under one data key (DEK).

The additional authenticated data (AAD) binds every value to its model, field
and row, so a value copied elsewhere fails to decrypt instead of being served.
"""

from __future__ import annotations

import functools
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import DecryptionError, ErrorCode
from .format import HEADER_SIZE, NONCE_SIZE, OVERHEAD, VERSION_V1, Envelope, parse

KEY_SIZE = 32  # AES-256

TAG_MISMATCH_DETAIL = "authentication tag mismatch (tampered data, or value copied from another row/field)"


def aad_for(*, model_label: str, field: str, pk: object) -> bytes:
    """AAD for one field of one row: ``b"v1|<app_label.model>.<field>|<pk>"``."""
    if pk is None or pk == "":
        raise ValueError("pk must be set before an encrypted field is sealed or opened")
    return _aad(model_label, field, pk)


@functools.lru_cache(maxsize=4096)
def _aad(model_label: str, field: str, pk: object) -> bytes:
    # Memoized: a row's AAD is computed on every seal and open, and formatting a UUID is not free.
    return f"v1|{model_label}.{field}|{pk}".encode()


class DataKeyCipher:
    """Seals and opens v1 envelopes with one unwrapped data key.

    The raw key is handed to a single ``AESGCM`` instance and not kept otherwise;
    instances can be neither printed with key bytes nor pickled or copied.
    """

    __slots__ = ("_aead", "_header", "dek_id")

    def __init__(self, dek_id: uuid.UUID, key: bytes) -> None:
        if not isinstance(dek_id, uuid.UUID):
            raise ValueError("dek_id must be a uuid.UUID")
        if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
            raise ValueError(f"data key must be {KEY_SIZE} bytes")
        self.dek_id = dek_id
        self._aead = AESGCM(bytes(key))
        self._header = bytes((VERSION_V1,)) + dek_id.bytes  # what every envelope of this key starts with

    def seal(self, plaintext: bytes, *, aad: bytes, nonce: bytes | None = None) -> bytes:
        """Encrypt ``plaintext`` into a full v1 envelope.

        ``nonce`` exists only for known-answer tests; production code lets it default
        to 12 random bytes, since reusing a nonce under one key breaks GCM.
        """
        if nonce is None:
            nonce = os.urandom(NONCE_SIZE)
        elif len(nonce) != NONCE_SIZE:
            raise ValueError(f"nonce must be {NONCE_SIZE} bytes")
        if not isinstance(plaintext, bytes):
            plaintext = bytes(plaintext)
        return self._header + bytes(nonce) + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, envelope: Envelope | bytes | bytearray | memoryview, *, aad: bytes) -> bytes:
        """Decrypt an envelope; any mismatch raises ``DecryptionError(INTEGRITY)``."""
        if type(envelope) is bytes and len(envelope) >= OVERHEAD and envelope.startswith(self._header):
            # Hot path: a well-formed envelope of this very key, sliced without building objects.
            try:
                return self._aead.decrypt(envelope[HEADER_SIZE - NONCE_SIZE : HEADER_SIZE], envelope[HEADER_SIZE:], aad)
            except InvalidTag:
                raise DecryptionError(ErrorCode.INTEGRITY, detail=TAG_MISMATCH_DETAIL) from None
        if not isinstance(envelope, Envelope):
            envelope = parse(envelope)
        if envelope.version != VERSION_V1:
            raise DecryptionError(ErrorCode.INTEGRITY, detail=f"unknown envelope version {envelope.version}")
        if envelope.dek_id != self.dek_id:
            raise DecryptionError(
                ErrorCode.INTEGRITY,
                detail=f"envelope names data key {envelope.dek_id}, not {self.dek_id}",
            )
        try:
            return self._aead.decrypt(envelope.nonce, envelope.ciphertext, aad)
        except InvalidTag:
            raise DecryptionError(ErrorCode.INTEGRITY, detail=TAG_MISMATCH_DETAIL) from None

    def __repr__(self) -> str:
        return f"<DataKeyCipher dek={self.dek_id}>"

    def __reduce_ex__(self, protocol: object) -> object:
        raise TypeError("DataKeyCipher holds key material and cannot be pickled or copied")
