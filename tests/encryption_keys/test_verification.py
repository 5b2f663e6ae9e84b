"""The verification checklist against the local KMS server: every outcome gets the right verdict."""

import json
import uuid

import pytest

from encryption_keys import local_kms as kms_admin
from encryption_keys.providers.aws.checks import PLATFORM_ACTIONS, key_policy_json, key_policy_statements
from encryption_keys.verification import Verdict, verify_key

pytestmark = pytest.mark.django_db
ALL = ["arn_syntax", "arn_region", "describe_key", "key_state", "key_spec", "key_usage", "multi_region", "replicas",
       "rotation", "round_trip"]


def verdicts(checklist) -> dict[str, str]:
    return checklist.verdicts()


def deny_for(org, action="kms:GenerateDataKey*"):
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "NoAcme", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": action, "Resource": "*",
             "Condition": {"StringEquals": {"kms:EncryptionContext:konnect:org": str(org.pk)}}},
        ],
    }


def test_a_good_key_passes_every_check_in_order(org, cmek, kms_calls):
    checklist = verify_key(organization=org, region="us", key_ref=cmek)
    assert [check.id for check in checklist.checks] == ALL
    assert set(verdicts(checklist).values()) == {"pass"}
    assert checklist.ok and not checklist.warnings
    assert checklist.metadata["replica_regions"] == ["us-east-2", "us-west-2"]
    assert checklist.metadata["rotation_enabled"] is True
    assert checklist.metadata["key_spec"] == "SYMMETRIC_DEFAULT"
    operations = list(kms_calls(organization=org, key_arn=cmek).order_by("created_at", "id")
                      .values_list("operation", flat=True))
    assert operations == ["DescribeKey", "GetKeyRotationStatus", "GenerateDataKey", "Decrypt"]


def test_round_trip_carries_the_organizations_encryption_context(org, cmek, kms_calls):
    verify_key(organization=org, region="us", key_ref=cmek)
    generate = kms_calls(organization=org, operation="GenerateDataKey").get()
    decrypt = kms_calls(organization=org, operation="Decrypt").get()
    context = generate.encryption_context
    assert context["konnect:org"] == str(org.pk)
    assert context["konnect:region"] == "us"
    assert context["konnect:purpose"] == "verification"
    assert uuid.UUID(context["konnect:datakey"])
    assert decrypt.encryption_context == context and generate.outcome == decrypt.outcome == "ok"


def test_alias_arn_is_rejected_with_the_reason_and_nothing_is_asked_of_kms(org, kms_calls):
    checklist = verify_key(organization=org, region="us", key_ref="arn:aws:kms:us-west-2:123456789012:alias/acme")
    syntax = checklist.get("arn_syntax")
    assert syntax.verdict == Verdict.FAIL
    assert "Alias ARNs are not accepted" in syntax.explanation
    assert all(checklist.get(c).verdict == Verdict.NOT_RUN for c in ALL[1:])
    assert "Key ARN" in checklist.get("describe_key").explanation
    assert not checklist.ok
    assert kms_calls().count() == 0


def test_garbage_is_not_a_key_reference(org, kms_calls):
    """Text no provider recognises never reaches a provider: one failed check saying which forms are accepted."""
    checklist = verify_key(organization=org, region="us", key_ref="my-key")
    assert [(check.id, check.verdict) for check in checklist.checks] == [("key_ref", Verdict.FAIL)]
    assert "arn:aws:kms:<aws-region>" in checklist.get("key_ref").explanation and not checklist.ok
    assert kms_calls().count() == 0


def test_an_arn_that_is_not_a_key_arn_fails_its_syntax_check(org):
    checklist = verify_key(organization=org, region="us", key_ref="arn:aws:kms:us-west-2:key/my-key")
    assert checklist.get("arn_syntax").verdict == Verdict.FAIL
    assert "not a KMS key ARN" in checklist.get("arn_syntax").explanation


def test_wrong_region_fails_and_kms_is_asked_nothing(org, kms_calls):
    """Data of a region stays there: a key of another geo is refused without a DescribeKey (or any other call)
    that would address that geo's KMS on the organization's behalf."""
    arn = kms_admin.create_key(region="eu-central-1", multi_region=True)
    checklist = verify_key(organization=org, region="us", key_ref=arn)
    region = checklist.get("arn_region")
    assert region.verdict == Verdict.FAIL
    assert "eu-central-1" in region.explanation and "us-west-2, us-east-2" in region.explanation
    assert "EU region" in region.fix
    assert not checklist.ok and checklist.failures == [region]
    assert {checklist.get(c).verdict for c in ALL[2:]} == {Verdict.NOT_RUN}
    assert "“Key region belongs to the Konnect region” failed" in checklist.get("describe_key").explanation
    assert kms_calls().count() == 0 and checklist.metadata == {}


def test_single_region_key_warns_and_skips_replicas(org):
    arn = kms_admin.create_key(region="us-west-2")
    checklist = verify_key(organization=org, region="us", key_ref=arn)
    assert checklist.get("multi_region").verdict == Verdict.WARN
    assert "single-region key" in checklist.get("multi_region").explanation
    assert checklist.get("replicas").verdict == Verdict.SKIPPED
    assert checklist.ok  # warnings do not block linking
    assert checklist.get("round_trip").verdict == Verdict.PASS


def test_single_region_key_is_enough_in_a_one_region_geo(org):
    arn = kms_admin.create_key(region="ap-southeast-1")
    checklist = verify_key(organization=org, region="sg", key_ref=arn)
    assert checklist.get("multi_region").verdict == Verdict.PASS
    assert checklist.get("replicas").verdict == Verdict.PASS


def test_missing_replica_warns_listing_the_region(org):
    arn = kms_admin.create_key(region="us-west-2", multi_region=True)
    checklist = verify_key(organization=org, region="us", key_ref=arn)
    replicas = checklist.get("replicas")
    assert replicas.verdict == Verdict.WARN
    assert "us-east-2" in replicas.explanation and "us-west-2" not in replicas.explanation
    assert f"replicate-key --key-id {arn} --replica-region us-east-2" in replicas.fix
    assert checklist.get("multi_region").verdict == Verdict.PASS
    assert checklist.ok


def test_replica_arn_sees_its_primary_and_siblings(org, cmek):
    replica = cmek.replace("us-west-2", "us-east-2")
    checklist = verify_key(organization=org, region="us", key_ref=replica)
    assert checklist.get("replicas").verdict == Verdict.PASS
    assert "replica" in checklist.get("multi_region").explanation


def test_rotation_off_warns(org, cmek):
    kms_admin.set_key_rotation(cmek, False)
    checklist = verify_key(organization=org, region="us", key_ref=cmek)
    rotation = checklist.get("rotation")
    assert rotation.verdict == Verdict.WARN
    assert "enable-key-rotation" in rotation.fix
    assert checklist.ok and checklist.metadata["rotation_enabled"] is False


def test_disabled_key_fails_and_stops_before_the_round_trip(org, cmek, kms_calls):
    kms_admin.disable_key(cmek)
    checklist = verify_key(organization=org, region="us", key_ref=cmek)
    assert checklist.get("key_state").verdict == Verdict.FAIL
    assert "disabled" in checklist.get("key_state").explanation
    assert checklist.get("key_state").fix == "Enable the key in AWS KMS."
    assert {checklist.get(c).verdict for c in ALL[4:]} == {Verdict.NOT_RUN}
    assert "Key enabled" in checklist.get("round_trip").explanation
    assert not checklist.ok
    assert list(kms_calls(organization=org).values_list("operation", flat=True)) == ["DescribeKey"]


def test_key_pending_deletion_fails_with_the_date(org, cmek):
    when = kms_admin.schedule_key_deletion(cmek, days=9)
    checklist = verify_key(organization=org, region="us", key_ref=cmek)
    state = checklist.get("key_state")
    assert state.verdict == Verdict.FAIL
    assert f"{when:%Y-%m-%d}" in state.explanation
    assert "Cancel the key deletion" in state.fix


def test_rsa_key_fails_key_spec(org):
    arn = kms_admin.create_key(region="us-west-2", multi_region=True, key_spec="RSA_2048", key_usage="ENCRYPT_DECRYPT")
    kms_admin.replicate_key(arn, to_region="us-east-2")
    checklist = verify_key(organization=org, region="us", key_ref=arn)
    assert checklist.get("key_spec").verdict == Verdict.FAIL
    assert "RSA_2048" in checklist.get("key_spec").explanation
    assert {checklist.get(c).verdict for c in ALL[5:]} == {Verdict.NOT_RUN}
    assert not checklist.ok


def test_unknown_key_fails_describe_and_stops(org):
    arn = f"arn:aws:kms:us-west-2:123456789012:key/{uuid.uuid4()}"
    checklist = verify_key(organization=org, region="us", key_ref=arn)
    describe = checklist.get("describe_key")
    assert describe.verdict == Verdict.FAIL
    assert describe.error_code == "key_not_found"
    assert "no key with this ARN" in describe.explanation and "NotFoundException" in describe.explanation
    assert {checklist.get(c).verdict for c in ALL[3:]} == {Verdict.NOT_RUN}


def test_policy_deny_on_this_organization_fails_the_round_trip(org, other_org, cmek):
    kms_admin.put_key_policy(cmek, deny_for(org))
    checklist = verify_key(organization=org, region="us", key_ref=cmek)
    round_trip = checklist.get("round_trip")
    assert round_trip.verdict == Verdict.FAIL
    assert round_trip.error_code == "key_access_denied"
    assert "GenerateDataKey" in round_trip.explanation and str(org.pk) in round_trip.explanation
    assert checklist.get("describe_key").verdict == Verdict.PASS  # DescribeKey carries no context
    assert not checklist.ok
    # The same key verifies for another organization: the Deny is pinned to this one's context.
    assert verify_key(organization=other_org, region="us", key_ref=cmek).ok


def test_policy_deny_on_decrypt_names_decrypt(org, cmek):
    kms_admin.put_key_policy(cmek, deny_for(org, action="kms:Decrypt"))
    round_trip = verify_key(organization=org, region="us", key_ref=cmek).get("round_trip")
    assert round_trip.verdict == Verdict.FAIL and "refused Decrypt" in round_trip.explanation


def test_unreachable_kms_fails_and_says_so(org, cmek, local_kms):
    local_kms.stop()
    try:
        checklist = verify_key(organization=org, region="us", key_ref=cmek)
    finally:
        local_kms.start()
    describe = checklist.get("describe_key")
    assert describe.verdict == Verdict.FAIL and describe.error_code == "kms_unavailable"
    assert checklist.kms_unreachable
    assert "Try again" in describe.fix


def test_policy_statements_grant_the_platform_actions_pinned_to_the_organization(org, settings):
    settings.PLATFORM_KMS_PRINCIPAL = "arn:aws:iam::999988887777:role/platform"
    use, read = key_policy_statements(org)
    assert use["Principal"] == read["Principal"] == {"AWS": "arn:aws:iam::999988887777:role/platform"}
    assert sorted(use["Action"] + read["Action"]) == sorted(PLATFORM_ACTIONS)
    assert use["Condition"] == {"StringEquals": {"kms:EncryptionContext:konnect:org": str(org.pk)}}
    assert sorted(read["Action"]) == ["kms:DescribeKey", "kms:GetKeyRotationStatus"]
    assert "Condition" not in read
    assert json.loads(key_policy_json(org)) == [use, read]
