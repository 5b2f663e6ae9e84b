"""AES-256-GCM sealing and opening of field values under one data key (DEK).

The AAD (``binding.py``; exact bytes in docs/envelope.md) binds every value to its tenant, region, purpose
and scope (v2) and to its model, field and row, so a value copied or moved elsewhere fails to decrypt
instead of being served. A cipher knows the scope of its data key: ``open_field`` refuses a row that
expects another scope before any decryption, ``seal_field`` writes v2 under the key's own scope.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .binding import KeyScope, aad_for, aad_v1, aad_v2_prefix, pk_bytes
from .errors import DecryptionError, ErrorCode, ScopeMismatch
from .format import HEADER_SIZE, NONCE_SIZE, OVERHEAD, VERSION_V1, VERSION_V2, Envelope, parse

KEY_SIZE = 32  # AES-256

TAG_MISMATCH_DETAIL = "authentication tag mismatch (tampered data, or value copied from another row/field)"


class DataKeyCipher:
    """Seals v2 envelopes and opens v1 and v2 envelopes with one unwrapped data key.

    ``scope`` is the identity of the data key (from its DataKey row), carried wherever the cipher goes,
    into the DEK cache included. The raw key is handed to a single ``AESGCM`` instance and not kept
    otherwise; instances can be neither printed with key bytes nor pickled or copied.
    """

    __slots__ = ("_aead", "_header_v1", "_header_v2", "dek_id", "scope")

    def __init__(self, dek_id: uuid.UUID, key: bytes, *, scope: KeyScope | None = None) -> None:
        if not isinstance(dek_id, uuid.UUID):
            raise ValueError("dek_id must be a uuid.UUID")
        if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
            raise ValueError(f"data key must be {KEY_SIZE} bytes")
        if scope is not None and not isinstance(scope, KeyScope):
            raise ValueError("scope must be a KeyScope")
        self.dek_id = dek_id
        self.scope = scope
        self._aead = AESGCM(bytes(key))
        # What every envelope of this key starts with, per version.
        self._header_v2 = bytes((VERSION_V2,)) + dek_id.bytes
        self._header_v1 = bytes((VERSION_V1,)) + dek_id.bytes

    # --- field values: scope-checked ------------------------------------------------------------------

    def seal_field(self, plaintext: bytes, *, model_label: str, field: str, pk: object,
                   nonce: bytes | None = None) -> bytes:
        """Seal one field value of one row as a v2 envelope bound to this key's scope."""
        if self.scope is None:
            raise ValueError("a cipher without a scope cannot seal field values")
        return self.seal(plaintext, aad=aad_for(scope=self.scope, model_label=model_label, field=field, pk=pk),
                         nonce=nonce)

    def seal_rows(self, rows: Sequence[Sequence[bytes | None]], *, model_label: str, fields: Sequence[str],
                  pks: Sequence[object]) -> list[list[bytes | None]]:
        """Seal the values of many rows of one model (a batch): ``rows[i][j]`` is row ``pks[i]``'s value of
        ``fields[j]``, None for no value (it stays None). The envelopes are those ``seal_field`` gives value by
        value, with each field's AAD prefix and each row's pk formatted once and the nonces drawn in one call."""
        if self.scope is None:
            raise ValueError("a cipher without a scope cannot seal field values")
        prefixes = [aad_v2_prefix(scope=self.scope, model_label=model_label, field=field) for field in fields]
        # 96 fresh random bits per value, read from the OS at once: the same randomness as os.urandom(12) per
        # value; each 12-byte slice is the nonce of exactly one value, never of another.
        nonces = os.urandom(NONCE_SIZE * sum(value is not None for values in rows for value in values))
        header, encrypt = self._header_v2, self._aead.encrypt
        offset, sealed = 0, []
        for values, pk in zip(rows, pks, strict=True):
            row_pk, envelopes = pk_bytes(pk), []
            for prefix, plaintext in zip(prefixes, values, strict=True):
                if plaintext is None:
                    envelopes.append(None)
                    continue
                nonce = nonces[offset:offset + NONCE_SIZE]
                offset += NONCE_SIZE
                envelopes.append(b"".join((header, nonce, encrypt(nonce, plaintext, prefix + row_pk))))
            sealed.append(envelopes)
        return sealed

    def open_field(self, envelope: bytes | bytearray | memoryview, *, scope: KeyScope, model_label: str,
                   field: str, pk: object) -> bytes:
        """Open one field value of a row that expects ``scope`` (its ``encryption_scope()``).

        Raises ``ScopeMismatch`` (``integrity``) when this data key belongs to another scope — whatever
        the envelope's version — and ``DecryptionError(INTEGRITY)`` on any other mismatch.
        """
        if self.scope != scope:
            raise ScopeMismatch(
                dek_id=self.dek_id, key_scope=self.scope, row_scope=scope,
                differences=scope.differences(self.scope) if self.scope is not None else (),
            )
        version = envelope[0] if type(envelope) is bytes and envelope else parse(envelope).version
        if version == VERSION_V2:
            aad = aad_for(scope=scope, model_label=model_label, field=field, pk=pk)
        elif version == VERSION_V1:
            aad = aad_v1(model_label=model_label, field=field, pk=pk)
        else:
            raise DecryptionError(ErrorCode.INTEGRITY, detail=f"unknown envelope version {version}")
        return self.open(envelope, aad=aad)

    # --- the primitive: the caller's AAD decides -------------------------------------------------------

    def seal(self, plaintext: bytes, *, aad: bytes, nonce: bytes | None = None) -> bytes:
        """Encrypt ``plaintext`` into a full v2 envelope under ``aad``.

        ``nonce`` exists only for known-answer tests; production code lets it default
        to 12 random bytes, since reusing a nonce under one key breaks GCM.
        """
        if nonce is None:
            nonce = os.urandom(NONCE_SIZE)
        elif len(nonce) != NONCE_SIZE:
            raise ValueError(f"nonce must be {NONCE_SIZE} bytes")
        if not isinstance(plaintext, bytes):
            plaintext = bytes(plaintext)
        return self._header_v2 + bytes(nonce) + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, envelope: Envelope | bytes | bytearray | memoryview, *, aad: bytes) -> bytes:
        """Decrypt a v1 or v2 envelope under ``aad``; any mismatch raises ``DecryptionError(INTEGRITY)``."""
        if type(envelope) is bytes and len(envelope) >= OVERHEAD and (
            envelope.startswith(self._header_v2) or envelope.startswith(self._header_v1)
        ):
            # Hot path: a well-formed envelope of this very key, sliced without building objects.
            try:
                return self._aead.decrypt(envelope[HEADER_SIZE - NONCE_SIZE : HEADER_SIZE], envelope[HEADER_SIZE:], aad)
            except InvalidTag:
                raise DecryptionError(ErrorCode.INTEGRITY, detail=TAG_MISMATCH_DETAIL) from None
        if not isinstance(envelope, Envelope):
            envelope = parse(envelope)
        if envelope.version not in (VERSION_V1, VERSION_V2):
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
