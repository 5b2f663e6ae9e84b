from datetime import UTC, datetime

import pytest

from encryption_keys.envelope import (
    DecryptionError,
    EncryptionUnavailable,
    EnvelopeError,
    ErrorCode,
)
from encryption_keys.envelope.errors import ERROR_CODES

ARN = "arn:aws:kms:us-west-2:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"


def test_error_codes_are_the_stable_strings_of_the_design():
    assert [code.value for code in ErrorCode] == [
        "key_disabled",
        "key_pending_deletion",
        "key_access_denied",
        "key_not_found",
        "kms_unavailable",
        "data_key_shredded",
        "integrity",
    ]


def test_every_code_has_an_explanation():
    assert set(ERROR_CODES) == set(ErrorCode)


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_code_has_title_message_and_retry_hint(code):
    error = EnvelopeError(code)
    assert error.title and error.title[0].isupper()
    assert error.message.endswith(".")
    assert "{" not in error.message
    assert error.retry_hint
    assert isinstance(error.retryable, bool)


def test_only_kms_unavailable_is_retryable():
    retryable = {code for code in ErrorCode if EnvelopeError(code).retryable}
    assert retryable == {ErrorCode.KMS_UNAVAILABLE}


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        ("key_disabled", "after the customer re-enables the key"),
        ("key_pending_deletion", "only if the customer cancels the key deletion"),
        ("key_access_denied", "after the customer fixes the key policy"),
        ("key_not_found", "no — the data is lost"),
        ("kms_unavailable", "yes, automatically"),
        ("data_key_shredded", "no — the data was shredded"),
        ("integrity", "no"),
    ],
)
def test_retry_hint_follows_the_design_table(code, hint):
    assert EnvelopeError(code).retry_hint == hint


def test_string_code_is_coerced_to_error_code():
    error = DecryptionError("key_disabled")
    assert error.code is ErrorCode.KEY_DISABLED


def test_unknown_code_is_rejected():
    with pytest.raises(ValueError):
        EnvelopeError("key_on_holiday")


def test_pending_deletion_message_contains_the_date():
    when = datetime(2031, 7, 4, 12, 30, tzinfo=UTC)
    error = DecryptionError(ErrorCode.KEY_PENDING_DELETION, key_ref=ARN, deletion_date=when)
    assert "scheduled for deletion on 2031-07-04," in error.message


def test_pending_deletion_message_without_date_has_no_placeholder():
    error = DecryptionError(ErrorCode.KEY_PENDING_DELETION)
    assert error.message.startswith(
        "The organization's encryption key is scheduled for deletion, so this data"
    )


def test_str_is_code_title_and_detail():
    assert str(DecryptionError("integrity")) == "integrity: Integrity check failed"
    assert (
        str(DecryptionError("key_disabled", detail="DisabledException"))
        == "key_disabled: Key disabled (DisabledException)"
    )


def test_fields_are_kept():
    when = datetime(2031, 1, 2, tzinfo=UTC)
    error = EncryptionUnavailable("kms_unavailable", key_ref=ARN, deletion_date=when, detail="timeout")
    assert (error.code, error.key_ref, error.deletion_date, error.detail) == (
        ErrorCode.KMS_UNAVAILABLE,
        ARN,
        when,
        "timeout",
    )


def test_from_error_copies_fields_into_another_class():
    when = datetime(2031, 1, 2, tzinfo=UTC)
    original = EncryptionUnavailable(
        "key_pending_deletion", key_ref=ARN, deletion_date=when, detail="KMSInvalidState"
    )
    copy = DecryptionError.from_error(original)
    assert type(copy) is DecryptionError
    assert copy is not original
    assert (copy.code, copy.key_ref, copy.deletion_date, copy.detail) == (
        ErrorCode.KEY_PENDING_DELETION,
        ARN,
        when,
        "KMSInvalidState",
    )


def test_both_error_kinds_are_envelope_errors_and_distinct():
    assert issubclass(DecryptionError, EnvelopeError)
    assert issubclass(EncryptionUnavailable, EnvelopeError)
    assert not issubclass(DecryptionError, EncryptionUnavailable)
    assert not issubclass(EncryptionUnavailable, DecryptionError)
