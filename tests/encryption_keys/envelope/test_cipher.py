import copy
import pickle
import uuid

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from encryption_keys.envelope import (
    HEADER_SIZE,
    OVERHEAD,
    VERSION_V1,
    DataKeyCipher,
    DecryptionError,
    ErrorCode,
    KeyScope,
    ScopeMismatch,
    aad_for,
    aad_v1,
    pack,
    parse,
)
from encryption_keys.envelope.binding import aad_v2_prefix, pk_bytes
from encryption_keys.envelope.cipher import TAG_MISMATCH_DETAIL

KEY = bytes(range(32))
DEK_ID = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
NONCE = bytes(range(100, 112))
ROW = uuid.UUID("12345678-1234-5678-1234-567812345678")
SCOPE = KeyScope("0b7c3f4e-8a51-4d2e-9f6a-3c1d2e4f5a6b", "us", "debugger.payload", "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a")
FIELD = {"model_label": "debugger.payloadcapture", "field": "body", "pk": ROW}
AAD = aad_for(scope=SCOPE, **FIELD)
AAD_V1 = aad_v1(**FIELD)

# The v2 known-answer vector of docs/envelope.md. Computed once with this module, then frozen: any change
# to the format or the AAD breaks it.
KNOWN_ENVELOPE = bytes.fromhex(
    "02"  # version
    "00112233445566778899aabbccddeeff"  # dek id
    "6465666768696a6b6c6d6e6f"  # nonce
    "207eb20a16c576f5510c318db911"  # ciphertext of b"hello, konnect"
    "e3ca5c4148331641094ed46786d13105"  # GCM tag over the v2 AAD
)
KNOWN_EMPTY_ENVELOPE = bytes.fromhex(
    "0200112233445566778899aabbccddeeff6465666768696a6b6c6d6e6fa6d76e6632f372fd13b6ad0fc553eb99"
)
# The legacy v1 vector (what the previous code wrote): same key, nonce and plaintext, v1 AAD.
KNOWN_V1_ENVELOPE = bytes.fromhex(
    "01"  # version
    "00112233445566778899aabbccddeeff"  # dek id
    "6465666768696a6b6c6d6e6f"  # nonce
    "207eb20a16c576f5510c318db911"  # ciphertext of b"hello, konnect"
    "b13ca2e5825daa379054439eabf43e78"  # GCM tag over the v1 AAD
)
KNOWN_V1_EMPTY_ENVELOPE = bytes.fromhex(
    "0100112233445566778899aabbccddeeff6465666768696a6b6c6d6e6f65cb61d69214ee4b634ad3a6a0fb1e66"
)
REGIONS = {  # name -> (start, end) in KNOWN_ENVELOPE
    "version": (0, 1),
    "dek_id": (1, 17),
    "nonce": (17, 29),
    "ciphertext_body": (29, 43),
    "tag": (43, 59),
}


@pytest.fixture
def cipher():
    return DataKeyCipher(DEK_ID, KEY, scope=SCOPE)


def test_v2_aad_binds_version_tenant_scope_model_field_and_row():
    assert AAD == (
        b"v2|0b7c3f4e-8a51-4d2e-9f6a-3c1d2e4f5a6b|us|debugger.payload|9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
        b"|debugger.payloadcapture.body|12345678-1234-5678-1234-567812345678"
    )
    vault = KeyScope("org", "eu", "vault.secret", "store")
    assert aad_for(scope=vault, model_label="vault.secret", field="value", pk=7) == (
        b"v2|org|eu|vault.secret|store|vault.secret.value|7"
    )


def test_v1_aad_binds_version_model_field_and_row():
    assert AAD_V1 == b"v1|debugger.payloadcapture.body|12345678-1234-5678-1234-567812345678"
    assert aad_v1(model_label="vault.secret", field="value", pk=7) == b"v1|vault.secret.value|7"


@pytest.mark.parametrize("pk", [None, ""])
def test_aad_refuses_a_missing_pk(pk):
    with pytest.raises(ValueError):
        aad_for(scope=SCOPE, model_label="vault.secret", field="value", pk=pk)
    with pytest.raises(ValueError):
        aad_v1(model_label="vault.secret", field="value", pk=pk)


@pytest.mark.parametrize(
    "parts",
    [("a|b", "us", "p", "s"), ("o", "u|s", "p", "s"), ("o", "us", "p|", "s"), ("o", "us", "p", "|s"),
     ("", "us", "p", "s"), ("o", "us", "p", "")],
)
def test_scope_components_cannot_make_the_aad_ambiguous(parts):
    """`|` separates components: a scope_ref of "x|y" could otherwise pose as another region or purpose."""
    with pytest.raises(ValueError):
        KeyScope(*parts)


def test_model_and_field_cannot_contain_the_separator():
    with pytest.raises(ValueError):
        aad_for(scope=SCOPE, model_label="debugger.payloadcapture|x", field="body", pk=ROW)
    with pytest.raises(ValueError):
        aad_for(scope=SCOPE, model_label="debugger.payloadcapture", field="bo|dy", pk=ROW)


def test_known_answer_vector(cipher):
    assert cipher.seal_field(b"hello, konnect", **FIELD, nonce=NONCE) == KNOWN_ENVELOPE
    assert cipher.seal(b"hello, konnect", aad=AAD, nonce=NONCE) == KNOWN_ENVELOPE
    literal_aad = (b"v2|0b7c3f4e-8a51-4d2e-9f6a-3c1d2e4f5a6b|us|debugger.payload|9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
                   b"|debugger.payloadcapture.body|12345678-1234-5678-1234-567812345678")
    direct = AESGCM(KEY).encrypt(NONCE, b"hello, konnect", literal_aad)
    assert KNOWN_ENVELOPE[HEADER_SIZE:] == direct
    assert cipher.open(KNOWN_ENVELOPE, aad=AAD) == b"hello, konnect"
    assert cipher.open_field(KNOWN_ENVELOPE, scope=SCOPE, **FIELD) == b"hello, konnect"


def test_known_answer_vector_for_empty_plaintext(cipher):
    assert cipher.seal(b"", aad=AAD, nonce=NONCE) == KNOWN_EMPTY_ENVELOPE
    assert KNOWN_EMPTY_ENVELOPE[HEADER_SIZE:] == AESGCM(KEY).encrypt(NONCE, b"", AAD)
    assert cipher.open(KNOWN_EMPTY_ENVELOPE, aad=AAD) == b""


def test_legacy_v1_vector_still_opens(cipher):
    """Values written by the previous code (version 0x01, v1 AAD) keep reading until `reseal` upgrades them."""
    assert KNOWN_V1_ENVELOPE[HEADER_SIZE:] == AESGCM(KEY).encrypt(NONCE, b"hello, konnect", AAD_V1)
    assert cipher.open(KNOWN_V1_ENVELOPE, aad=AAD_V1) == b"hello, konnect"
    assert cipher.open_field(KNOWN_V1_ENVELOPE, scope=SCOPE, **FIELD) == b"hello, konnect"
    assert cipher.open_field(KNOWN_V1_EMPTY_ENVELOPE, scope=SCOPE, **FIELD) == b""


@pytest.mark.parametrize(("envelope", "forged_version"), [("v2", 1), ("v1", 2)])
def test_rewriting_the_version_byte_fails_the_tag(cipher, envelope, forged_version):
    """The AAD starts with the version, so a v2 value cannot be downgraded to v1 (or back) by one byte."""
    original = KNOWN_ENVELOPE if envelope == "v2" else KNOWN_V1_ENVELOPE
    forged = bytes((forged_version,)) + original[1:]
    with pytest.raises(DecryptionError) as caught:
        cipher.open_field(forged, scope=SCOPE, **FIELD)
    assert (caught.value.code, caught.value.detail) == (ErrorCode.INTEGRITY, TAG_MISMATCH_DETAIL)


@pytest.mark.parametrize("part", ["organization", "region", "purpose", "scope_ref"])
@pytest.mark.parametrize("envelope", ["v2", "v1"])
def test_a_row_of_another_scope_is_refused_before_decrypting(cipher, part, envelope):
    """The data key's scope must be the row's, whatever the version: v1 values are refused too."""
    moved = KeyScope(**{**SCOPE.as_dict(), part: "elsewhere"})
    blob = KNOWN_ENVELOPE if envelope == "v2" else KNOWN_V1_ENVELOPE
    with pytest.raises(ScopeMismatch) as caught:
        cipher.open_field(blob, scope=moved, **FIELD)
    error = caught.value
    assert isinstance(error, DecryptionError) and error.code is ErrorCode.INTEGRITY
    assert (error.key_scope, error.row_scope, error.differences) == (SCOPE, moved, (part,))
    assert part in error.detail and "hello" not in error.detail


def test_v2_value_opened_with_another_scopes_aad_fails_even_under_the_right_key():
    """Even a data key posing as another scope (forged DataKey row) cannot open a v2 value: the AAD names it."""
    moved = KeyScope(**{**SCOPE.as_dict(), "organization": "another-org"})
    impostor = DataKeyCipher(DEK_ID, KEY, scope=moved)
    with pytest.raises(DecryptionError) as caught:
        impostor.open_field(KNOWN_ENVELOPE, scope=moved, **FIELD)
    assert (caught.value.code, caught.value.detail) == (ErrorCode.INTEGRITY, TAG_MISMATCH_DETAIL)


def test_a_cipher_without_a_scope_opens_no_field_and_seals_none():
    bare = DataKeyCipher(DEK_ID, KEY)
    with pytest.raises(ScopeMismatch):
        bare.open_field(KNOWN_ENVELOPE, scope=SCOPE, **FIELD)
    with pytest.raises(ValueError):
        bare.seal_field(b"x", **FIELD)
    with pytest.raises(ValueError):
        bare.seal_rows([[b"x"]], model_label="debugger.payloadcapture", fields=["body"], pks=[ROW])


def test_nist_gcm_test_case_16_inside_an_envelope():
    """AES-256 vector from the GCM specification (McGrew & Viega), test case 16."""
    key = bytes.fromhex("feffe9928665731c6d6a8f9467308308" * 2)
    nonce = bytes.fromhex("cafebabefacedbaddecaf888")
    aad = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
    plaintext = bytes.fromhex(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
    )
    expected = bytes.fromhex(
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
        "76fc6ece0f4e1768cddf8853bb2d551b"
    )
    blob = DataKeyCipher(DEK_ID, key).seal(plaintext, aad=aad, nonce=nonce)
    assert blob == b"\x02" + DEK_ID.bytes + nonce + expected


@pytest.mark.parametrize("plaintext", [b"", b"x", "grüße ✓".encode(), bytes(range(256)) * 4096])
def test_round_trip(cipher, plaintext):
    blob = cipher.seal(plaintext, aad=AAD)
    assert cipher.open(blob, aad=AAD) == plaintext
    assert cipher.open(parse(blob), aad=AAD) == plaintext
    assert cipher.open(memoryview(blob), aad=AAD) == plaintext
    sealed = cipher.seal_field(plaintext, **FIELD)
    assert sealed[0] == 2
    assert cipher.open_field(sealed, scope=SCOPE, **FIELD) == plaintext
    assert cipher.open_field(memoryview(sealed), scope=SCOPE, **FIELD) == plaintext


@pytest.mark.parametrize("size", [0, 1, 1000, 1024 * 1024])
def test_overhead_is_exactly_45_bytes(cipher, size):
    assert OVERHEAD == 45
    assert len(cipher.seal(bytes(size), aad=AAD)) == size + 45


def test_each_seal_uses_a_fresh_random_nonce(cipher):
    first, second = cipher.seal(b"same", aad=AAD), cipher.seal(b"same", aad=AAD)
    assert parse(first).nonce != parse(second).nonce
    assert first != second


# --- a batch: seal_rows ----------------------------------------------------------------------------------

BATCH_FIELDS = ["url", "headers", "body"]
BATCH_PKS = [ROW, uuid.UUID("87654321-4321-8765-4321-876543218765"), 7, "row-8"]
BATCH_ROWS = [[b"https://a.test/", b'{"k":"v"}', b"hello, konnect"], [None, b"{}", b""],
              [b"u", None, None], [None, None, bytes(range(256))]]


def test_aad_prefix_and_pk_make_the_documented_aad():
    prefix = aad_v2_prefix(scope=SCOPE, model_label="debugger.payloadcapture", field="body")
    assert prefix + pk_bytes(ROW) == AAD
    for pk in (7, "row-8", uuid.UUID(int=1)):
        assert prefix + pk_bytes(pk) == aad_for(scope=SCOPE, model_label="debugger.payloadcapture", field="body", pk=pk)


def test_seal_rows_writes_the_envelopes_seal_field_writes_value_by_value(cipher):
    """Same bytes as the one-by-one path given the same nonce: same header, same AAD, same ciphertext."""
    sealed = cipher.seal_rows(BATCH_ROWS, model_label="debugger.payloadcapture", fields=BATCH_FIELDS, pks=BATCH_PKS)
    assert len(sealed) == len(BATCH_ROWS)
    for values, envelopes, pk in zip(BATCH_ROWS, sealed, BATCH_PKS, strict=True):
        for field, plaintext, envelope in zip(BATCH_FIELDS, values, envelopes, strict=True):
            if plaintext is None:
                assert envelope is None
                continue
            one_by_one = cipher.seal_field(plaintext, model_label="debugger.payloadcapture", field=field, pk=pk,
                                           nonce=parse(envelope).nonce)
            assert envelope == one_by_one
            assert cipher.open_field(envelope, scope=SCOPE, model_label="debugger.payloadcapture", field=field,
                                     pk=pk) == plaintext


def test_seal_rows_gives_every_value_its_own_nonce(cipher):
    rows = [[b"same", b"same"] for _ in range(500)]
    first = cipher.seal_rows(rows, model_label="debugger.payloadcapture", fields=["url", "body"],
                             pks=list(range(1, 501)))
    second = cipher.seal_rows(rows, model_label="debugger.payloadcapture", fields=["url", "body"],
                              pks=list(range(1, 501)))
    nonces = [parse(envelope).nonce for batch in (first, second) for envelopes in batch for envelope in envelopes]
    assert len(set(nonces)) == len(nonces) == 2000


def test_seal_rows_binds_each_value_to_its_own_row_and_field(cipher):
    [[url, body], [other_url, _]] = cipher.seal_rows([[b"a", b"b"], [b"c", b"d"]], model_label="debugger.payloadcapture",
                                                     fields=["url", "body"], pks=[ROW, 7])
    with pytest.raises(DecryptionError):
        cipher.open_field(url, scope=SCOPE, model_label="debugger.payloadcapture", field="body", pk=ROW)
    with pytest.raises(DecryptionError):
        cipher.open_field(body, scope=SCOPE, model_label="debugger.payloadcapture", field="body", pk=7)
    assert cipher.open_field(other_url, scope=SCOPE, model_label="debugger.payloadcapture", field="url", pk=7) == b"c"


@pytest.mark.parametrize("pk", [None, ""])
def test_seal_rows_refuses_a_row_without_pk(cipher, pk):
    with pytest.raises(ValueError):
        cipher.seal_rows([[b"x"]], model_label="debugger.payloadcapture", fields=["body"], pks=[pk])


def test_seal_rows_refuses_rows_and_pks_that_do_not_pair(cipher):
    with pytest.raises(ValueError):
        cipher.seal_rows([[b"x"], [b"y"]], model_label="debugger.payloadcapture", fields=["body"], pks=[ROW])
    with pytest.raises(ValueError):
        cipher.seal_rows([[b"x", b"y"]], model_label="debugger.payloadcapture", fields=["body"], pks=[ROW])


@pytest.mark.parametrize("region", list(REGIONS))
def test_flipping_a_byte_in_any_region_fails_integrity(cipher, region):
    start, end = REGIONS[region]
    for offset in (start, end - 1):
        tampered = bytearray(KNOWN_ENVELOPE)
        tampered[offset] ^= 0x01
        with pytest.raises(DecryptionError) as caught:
            cipher.open(bytes(tampered), aad=AAD)
        assert caught.value.code is ErrorCode.INTEGRITY


def test_flipping_any_single_byte_fails_integrity(cipher):
    for offset in range(len(KNOWN_ENVELOPE)):
        tampered = bytearray(KNOWN_ENVELOPE)
        tampered[offset] ^= 0x80
        with pytest.raises(DecryptionError) as caught:
            cipher.open(tampered, aad=AAD)
        assert caught.value.code is ErrorCode.INTEGRITY, offset


def test_tampered_body_reports_tag_mismatch(cipher):
    tampered = bytearray(KNOWN_ENVELOPE)
    tampered[30] ^= 0xFF
    with pytest.raises(DecryptionError) as caught:
        cipher.open(bytes(tampered), aad=AAD)
    assert caught.value.detail == TAG_MISMATCH_DETAIL


def test_wrong_key_with_same_dek_id_fails(cipher):
    impostor = DataKeyCipher(DEK_ID, bytes(32))
    with pytest.raises(DecryptionError) as caught:
        impostor.open(cipher.seal(b"secret", aad=AAD), aad=AAD)
    assert (caught.value.code, caught.value.detail) == (ErrorCode.INTEGRITY, TAG_MISMATCH_DETAIL)


def test_envelope_of_another_data_key_is_refused_without_trying(cipher):
    other_id = uuid.UUID(int=DEK_ID.int + 1)
    blob = DataKeyCipher(other_id, KEY).seal(b"secret", aad=AAD)
    with pytest.raises(DecryptionError) as caught:
        cipher.open(blob, aad=AAD)
    assert caught.value.code is ErrorCode.INTEGRITY
    assert caught.value.detail == f"envelope names data key {other_id}, not {DEK_ID}"


@pytest.mark.parametrize(
    "other_aad",
    [
        aad_for(scope=SCOPE, model_label="debugger.payloadcapture", field="body", pk=uuid.UUID(int=1)),
        aad_for(scope=SCOPE, model_label="debugger.payloadcapture", field="headers", pk=ROW),
        aad_for(scope=SCOPE, model_label="debugger.requestlog", field="body", pk=ROW),
        aad_for(scope=KeyScope(**{**SCOPE.as_dict(), "scope_ref": "another-session"}), **FIELD),
        AAD_V1,
        b"",
    ],
    ids=["another_row", "another_field", "another_model", "another_scope", "v1_aad", "no_aad"],
)
def test_value_moved_to_another_row_field_or_model_fails(cipher, other_aad):
    blob = cipher.seal(b"secret", aad=AAD)
    with pytest.raises(DecryptionError) as caught:
        cipher.open(blob, aad=other_aad)
    assert (caught.value.code, caught.value.detail) == (ErrorCode.INTEGRITY, TAG_MISMATCH_DETAIL)


def test_manually_built_envelope_with_unknown_version_is_refused(cipher):
    envelope = parse(KNOWN_ENVELOPE)
    forged = type(envelope)(3, envelope.dek_id, envelope.nonce, envelope.ciphertext)
    with pytest.raises(DecryptionError) as caught:
        cipher.open(forged, aad=AAD)
    assert caught.value.detail == "unknown envelope version 3"
    with pytest.raises(DecryptionError) as caught:
        cipher.open_field(b"\x03" + KNOWN_ENVELOPE[1:], scope=SCOPE, **FIELD)
    assert caught.value.detail == "unknown envelope version 3"


@pytest.mark.parametrize("key", [b"", bytes(16), bytes(31), bytes(33), "k" * 32])
def test_key_must_be_32_bytes(key):
    with pytest.raises(ValueError):
        DataKeyCipher(DEK_ID, key)


def test_dek_id_must_be_a_uuid():
    with pytest.raises(ValueError):
        DataKeyCipher(str(DEK_ID), KEY)


def test_seal_rejects_a_wrong_size_nonce(cipher):
    with pytest.raises(ValueError):
        cipher.seal(b"x", aad=AAD, nonce=bytes(8))


def test_repr_shows_dek_id_and_no_key_material(cipher):
    text = repr(cipher)
    assert text == "<DataKeyCipher dek=00112233-4455-6677-8899-aabbccddeeff>"
    assert KEY.hex() not in text and KEY.hex()[:16] not in text
    assert repr(KEY) not in text and str(KEY) not in text
    assert KEY not in text.encode("latin-1")


def test_raw_key_is_not_kept_as_an_attribute(cipher):
    assert not hasattr(cipher, "__dict__")
    assert all(getattr(cipher, slot) != KEY for slot in DataKeyCipher.__slots__)


def test_cipher_cannot_be_pickled_or_copied(cipher):
    with pytest.raises(TypeError):
        pickle.dumps(cipher)
    with pytest.raises(TypeError):
        copy.copy(cipher)


def test_seal_output_parses_back_to_its_regions(cipher):
    blob = cipher.seal(b"abc", aad=AAD, nonce=NONCE)
    assert blob == pack(dek_id=DEK_ID, nonce=NONCE, ciphertext=AESGCM(KEY).encrypt(NONCE, b"abc", AAD))
    legacy = pack(dek_id=DEK_ID, nonce=NONCE, ciphertext=AESGCM(KEY).encrypt(NONCE, b"abc", AAD_V1), version=VERSION_V1)
    assert cipher.open(legacy, aad=AAD_V1) == b"abc"
