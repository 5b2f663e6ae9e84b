"""ARN parsing: known cases and a property test (never anything but a KeyArn or InvalidKeyArn)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from encryption_keys.providers.aws.arns import (
    GEO_AWS_REGIONS,
    InvalidKeyArn,
    failover_arns,
    geo_of_aws_region,
    parse_key_arn,
)

UUID_KEY = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
MRK_KEY = "arn:aws:kms:eu-central-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"


def test_parses_single_and_multi_region_key_arns():
    single = parse_key_arn(UUID_KEY)
    assert (single.region, single.account, single.is_multi_region) == ("us-west-2", "111122223333", False)
    multi = parse_key_arn(f"  {MRK_KEY} ")
    assert multi.is_multi_region and multi.key_id == "mrk-1234abcd12ab34cd56ef1234567890ab"
    assert multi.in_region("eu-west-1") == MRK_KEY.replace("eu-central-1", "eu-west-1")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "Enter the key's ARN"),
        ("arn:aws:kms:us-west-2:111122223333:alias/my-key", "Alias ARNs are not accepted"),
        ("arn:aws:kms:us-west-2:1111:key/1234abcd-12ab-34cd-56ef-1234567890ab", "not a KMS key ARN"),
        ("arn:aws:s3:::bucket", "not a KMS key ARN"),
        ("arn:aws:kms:us-west-2:111122223333:key/mrk-short", "not a KMS key ARN"),
        ("1234abcd-12ab-34cd-56ef-1234567890ab", "not a KMS key ARN"),
    ],
)
def test_rejects_with_a_reason(text, reason):
    with pytest.raises(InvalidKeyArn) as excinfo:
        parse_key_arn(text)
    assert reason in excinfo.value.reason


@given(st.text(max_size=200))
def test_any_text_parses_or_is_refused_with_a_reason(text):
    try:
        parsed = parse_key_arn(text)
    except InvalidKeyArn as error:
        assert error.reason
    else:
        assert parsed.arn == text.strip()


@given(st.sampled_from(sorted(GEO_AWS_REGIONS)), st.uuids())
def test_failover_stays_inside_the_geo(geo, key_uuid):
    region = GEO_AWS_REGIONS[geo][0]
    arn = f"arn:aws:kms:{region}:111122223333:key/mrk-{key_uuid.hex}"
    candidates = failover_arns(arn)
    assert candidates[0] == arn
    assert [geo_of_aws_region(parse_key_arn(c).region) for c in candidates] == [geo] * len(GEO_AWS_REGIONS[geo])


def test_single_region_keys_do_not_fail_over():
    assert failover_arns(UUID_KEY) == [UUID_KEY]
