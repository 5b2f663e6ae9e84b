import ast
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import encryption_keys.envelope as envelope_package
from encryption_keys.envelope import (
    HEADER_SIZE,
    NONCE_SIZE,
    OVERHEAD,
    TAG_SIZE,
    VERSION_V1,
    VERSION_V2,
    DecryptionError,
    Envelope,
    ErrorCode,
    pack,
    parse,
    peek_dek_id,
    peek_version,
)

DEK_ID = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
NONCE = bytes(range(100, 112))
CIPHERTEXT = bytes(range(200, 230))  # 14 body bytes + 16 tag bytes
BLOB = b"\x02" + DEK_ID.bytes + NONCE + CIPHERTEXT
BLOB_V1 = b"\x01" + DEK_ID.bytes + NONCE + CIPHERTEXT


def test_layout_constants():
    assert (VERSION_V1, VERSION_V2, NONCE_SIZE, TAG_SIZE, HEADER_SIZE, OVERHEAD) == (1, 2, 12, 16, 29, 45)


def test_pack_lays_out_version_dek_nonce_ciphertext():
    assert pack(dek_id=DEK_ID, nonce=NONCE, ciphertext=CIPHERTEXT) == BLOB
    assert BLOB[:17].hex() == "0200112233445566778899aabbccddeeff"
    assert pack(dek_id=DEK_ID, nonce=NONCE, ciphertext=CIPHERTEXT, version=VERSION_V1) == BLOB_V1


def test_parse_splits_the_regions():
    assert parse(BLOB) == Envelope(version=2, dek_id=DEK_ID, nonce=NONCE, ciphertext=CIPHERTEXT)


def test_v1_and_v2_share_the_layout():
    assert parse(BLOB_V1) == Envelope(version=1, dek_id=DEK_ID, nonce=NONCE, ciphertext=CIPHERTEXT)
    assert peek_dek_id(BLOB_V1) == peek_dek_id(BLOB) == DEK_ID
    assert (peek_version(BLOB_V1), peek_version(BLOB), peek_version(memoryview(BLOB))) == (1, 2, 2)


def test_pack_refuses_an_unknown_version():
    with pytest.raises(ValueError):
        pack(dek_id=DEK_ID, nonce=NONCE, ciphertext=CIPHERTEXT, version=3)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_parse_accepts_bytes_like_values(wrap):
    envelope = parse(wrap(BLOB))
    assert (envelope.dek_id, envelope.nonce, envelope.ciphertext) == (
        DEK_ID,
        NONCE,
        CIPHERTEXT,
    )
    assert type(envelope.nonce) is bytes and type(envelope.ciphertext) is bytes


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_peek_dek_id_reads_the_header(wrap):
    assert peek_dek_id(wrap(BLOB)) == DEK_ID


def test_smallest_envelope_is_header_plus_tag():
    blob = pack(dek_id=DEK_ID, nonce=NONCE, ciphertext=bytes(TAG_SIZE))
    assert len(blob) == OVERHEAD
    assert parse(blob).ciphertext == bytes(TAG_SIZE)


@pytest.mark.parametrize(
    ("blob", "detail"),
    [
        (b"", "envelope is empty"),
        (b"\x03" + BLOB[1:], "unknown envelope version 3"),
        (b"\x00" + BLOB[1:], "unknown envelope version 0"),
        (BLOB[:HEADER_SIZE], "envelope is 29 bytes, shorter than the minimum 45"),
        (BLOB[: OVERHEAD - 1], "envelope is 44 bytes, shorter than the minimum 45"),
        (BLOB_V1[: OVERHEAD - 1], "envelope is 44 bytes, shorter than the minimum 45"),
        (b"\x01", "envelope is 1 bytes, shorter than the minimum 45"),
        (b"\x02", "envelope is 1 bytes, shorter than the minimum 45"),
        ("01" * 50, "envelope must be bytes-like, not str"),
        (None, "envelope must be bytes-like, not NoneType"),
        (45, "envelope must be bytes-like, not int"),
    ],
)
def test_malformed_input_is_an_integrity_error(blob, detail):
    for read in (parse, peek_dek_id, peek_version):
        with pytest.raises(DecryptionError) as caught:
            read(blob)
        assert caught.value.code is ErrorCode.INTEGRITY
        assert caught.value.detail == detail


def test_released_memoryview_is_an_integrity_error():
    view = memoryview(bytearray(BLOB))
    view.release()
    with pytest.raises(DecryptionError) as caught:
        parse(view)
    assert caught.value.code is ErrorCode.INTEGRITY


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dek_id": str(DEK_ID), "nonce": NONCE, "ciphertext": CIPHERTEXT},
        {"dek_id": DEK_ID, "nonce": NONCE[:11], "ciphertext": CIPHERTEXT},
        {"dek_id": DEK_ID, "nonce": NONCE + b"\x00", "ciphertext": CIPHERTEXT},
        {"dek_id": DEK_ID, "nonce": NONCE, "ciphertext": bytes(TAG_SIZE - 1)},
        {"dek_id": DEK_ID, "nonce": NONCE, "ciphertext": "not bytes" * 4},
    ],
)
def test_pack_rejects_programming_mistakes(kwargs):
    with pytest.raises(ValueError):
        pack(**kwargs)


@given(st.binary(max_size=200))
def test_parse_of_arbitrary_bytes_returns_envelope_or_integrity_error(blob):
    _assert_envelope_or_integrity_error(blob)


@given(st.sampled_from([b"\x01", b"\x02"]), st.binary(max_size=120))
def test_parse_of_arbitrary_versioned_bytes_never_crashes(version, tail):
    blob = version + tail
    envelope = _assert_envelope_or_integrity_error(blob)
    if envelope is not None:
        assert pack(dek_id=envelope.dek_id, nonce=envelope.nonce, ciphertext=envelope.ciphertext,
                    version=envelope.version) == blob


@given(st.one_of(st.text(), st.integers(), st.none(), st.lists(st.integers(0, 255))))
def test_parse_of_non_bytes_is_an_integrity_error(value):
    with pytest.raises(DecryptionError) as caught:
        parse(value)
    assert caught.value.code is ErrorCode.INTEGRITY


@given(
    dek_id=st.uuids(),
    nonce=st.binary(min_size=NONCE_SIZE, max_size=NONCE_SIZE),
    ciphertext=st.binary(min_size=TAG_SIZE, max_size=300),
)
def test_pack_parse_round_trip(dek_id, nonce, ciphertext):
    blob = pack(dek_id=dek_id, nonce=nonce, ciphertext=ciphertext)
    assert len(blob) == HEADER_SIZE + len(ciphertext)
    assert parse(blob) == Envelope(version=VERSION_V2, dek_id=dek_id, nonce=nonce, ciphertext=ciphertext)
    assert peek_dek_id(memoryview(blob)) == dek_id


def _assert_envelope_or_integrity_error(blob):
    try:
        envelope = parse(blob)
    except DecryptionError as error:
        assert error.code is ErrorCode.INTEGRITY
        assert error.detail
        return None
    assert len(blob) >= OVERHEAD and blob[0] in (VERSION_V1, VERSION_V2)
    assert envelope.dek_id.bytes == blob[1:17]
    return envelope


def test_envelope_package_imports_only_stdlib_and_cryptography():
    package = Path(envelope_package.__file__).parent
    imported = set()
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    assert "cryptography" in imported
    assert imported - sys.stdlib_module_names == {"cryptography"}
