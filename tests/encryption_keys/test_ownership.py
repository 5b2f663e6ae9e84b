"""A KMS key belongs to one organization: Globex cannot link (or replace with) Acme's key, nor a replica of it.

Each test is the attack. The refusals come before any KMS call on the attacker's behalf and never name the owner;
the database's unique `key_identity` settles a race; and the key policy the Link key page hands out, enforced by
the local KMS, refuses another organization's round trip on its own.
"""

import pytest
from django.db import IntegrityError, transaction

from encryption_keys import local_kms as kms_admin
from encryption_keys import services
from encryption_keys.lifecycle import KeyReplacementError, replace_key, rewrap_data_keys
from encryption_keys.models import EncryptionKey
from encryption_keys.providers.aws import arns as geos
from encryption_keys.providers.aws.checks import key_policy_statements
from encryption_keys.verification import Verdict, verify_key
from tests.testapp.models import SealedNote

pytestmark = pytest.mark.django_db
OWNED = "key_owned_by_another_organization"


def link(org, admin, arn, region="us"):
    return services.link_key(organization=org, region=region, key_arn=arn, name=f"{org.name} key", actor=admin)


def customer_key(policy=None, region="us-west-2", replica="us-east-2"):
    arn = kms_admin.create_key(region=region, multi_region=True, policy=policy)
    kms_admin.replicate_key(arn, to_region=replica, policy=policy)
    return arn


@pytest.fixture
def acme_key(org, org_admin, cmek):
    return link(org, org_admin, cmek).key


def refused(call, code=OWNED) -> str:
    with pytest.raises(services.KeyInUse) as refusal:
        call()
    assert refusal.value.code == code
    return str(refusal.value)


def test_globex_cannot_link_acmes_key_and_kms_is_asked_nothing(org, other_org, other_org_admin, acme_key, kms_calls):
    message = refused(lambda: link(other_org, other_org_admin, acme_key.key_arn))
    assert "another organization" in message and "Acme" not in message and str(org.pk) not in message
    assert not EncryptionKey.objects.filter(organization=other_org).exists()
    assert kms_calls(organization=other_org).count() == 0  # not even a DescribeKey on Acme's key for Globex


@pytest.mark.parametrize("acme_links", ["us-west-2", "us-east-2"])
def test_globex_cannot_link_a_multi_region_sibling_of_acmes_key(org, org_admin, other_org, other_org_admin, cmek,
                                                                  acme_links):
    parsed = geos.parse_key_arn(cmek)
    link(org, org_admin, parsed.in_region(acme_links))
    sibling = parsed.in_region("us-east-2" if acme_links == "us-west-2" else "us-west-2")
    refused(lambda: link(other_org, other_org_admin, sibling))
    eu_sibling = parsed.in_region("eu-central-1")  # a replica Acme made in another geo is still Acme's key
    refused(lambda: services.link_key(organization=other_org, region="eu", key_arn=eu_sibling, name="k",
                                      actor=other_org_admin))


def test_globex_cannot_replace_its_key_with_acmes(org, other_org, other_org_admin, acme_key, kms_calls):
    link(other_org, other_org_admin, customer_key())
    before = kms_calls(organization=other_org).count()
    with pytest.raises(KeyReplacementError) as refusal:
        replace_key(organization=other_org, region="us", new_key_arn=acme_key.key_arn, actor=other_org_admin)
    assert refusal.value.code == OWNED and "Acme" not in str(refusal.value)
    assert EncryptionKey.objects.get(organization=other_org).key_arn != acme_key.key_arn
    assert kms_calls(organization=other_org).count() == before


def test_after_unlinking_the_key_still_protects_acmes_data_so_globex_cannot_take_it(
    org, org_admin, other_org, other_org_admin, acme_key
):
    SealedNote.objects.create(organization=org, text="card 4111")  # a data key wrapped by Acme's key
    services.unlink_key(key=acme_key, actor=org_admin)
    refused(lambda: link(other_org, other_org_admin, acme_key.key_arn))
    assert link(org, org_admin, acme_key.key_arn).key.organization == org  # Acme may link its own key again


def test_the_old_key_of_a_replacement_stays_acmes_until_every_data_key_is_rewrapped(
    org, org_admin, other_org, other_org_admin, acme_key
):
    SealedNote.objects.create(organization=org, text="card 4111")
    old_arn = acme_key.key_arn
    job = replace_key(organization=org, region="us", new_key_arn=customer_key(), actor=org_admin, start=False)
    refused(lambda: link(other_org, other_org_admin, old_arn))  # re-wrap not run yet: old key wraps Acme's data
    rewrap_data_keys(job)
    assert link(other_org, other_org_admin, old_arn).key.organization == other_org  # nothing of Acme's left under it


def test_an_organization_cannot_link_one_key_for_two_regions(org, org_admin):
    arn = customer_key()
    link(org, org_admin, arn)
    eu_replica = kms_admin.replicate_key(arn, to_region="eu-central-1")
    message = refused(lambda: link(org, org_admin, eu_replica, region="eu"), code="key_linked_in_another_region")
    assert "US" in message


def test_nobody_links_the_platform_key(org, org_admin, platform_keys, kms_calls):
    refused(lambda: link(org, org_admin, platform_keys["us"]), code="platform_key")
    assert kms_calls(organization=org).count() == 0


def test_the_database_refuses_a_second_link_of_one_key_or_its_sibling(org, other_org, cmek):
    EncryptionKey.objects.create(organization=org, region="us", name="a", key_arn=cmek)
    sibling = geos.parse_key_arn(cmek).in_region("us-east-2")
    with pytest.raises(IntegrityError), transaction.atomic():
        EncryptionKey.objects.create(organization=other_org, region="us", name="b", key_arn=sibling)
    assert EncryptionKey.objects.get().key_identity == f"aws:123456789012:{geos.parse_key_arn(cmek).key_id}"


def test_two_organizations_linking_one_key_at_once_one_wins(org, org_admin, other_org, other_org_admin, cmek,
                                                              monkeypatch):
    """Globex's link passes the ownership check; while KMS verifies the key for Globex, Acme's link of the same key
    commits. Globex's insert then meets the unique key identity and is refused like any other cross-org link."""
    real_verify = services.verify_key
    interleaved = []

    def verify_while_acme_links(**kwargs):
        checklist = real_verify(**kwargs)
        if kwargs["organization"] == other_org and not interleaved:
            interleaved.append(link(org, org_admin, cmek))
        return checklist

    monkeypatch.setattr(services, "verify_key", verify_while_acme_links)
    refused(lambda: link(other_org, other_org_admin, cmek))
    assert interleaved and list(EncryptionKey.objects.values_list("organization", flat=True)) == [org.pk]


# --- the key policy the Link key page shows, enforced by the local KMS --------------------------------------------


@pytest.fixture
def acme_policy_key(org):
    """A customer key with exactly the statements the Link key page shows Acme, plus the account's root admin."""
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "EnableRootAccess", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
         "Action": "kms:*", "Resource": "*"},
        *key_policy_statements(org),
    ]}
    return customer_key(policy)


def test_acme_links_a_key_whose_policy_is_the_statement_it_was_shown(org, org_admin, acme_policy_key):
    linked = link(org, org_admin, acme_policy_key)
    assert set(linked.checklist.verdicts().values()) == {"pass"}
    assert SealedNote.objects.create(organization=org, text="card 4111").text.reveal() == "card 4111"


def test_globex_round_trip_on_acmes_key_is_denied_by_the_key_policy(other_org, other_org_admin, acme_policy_key,
                                                                     kms_calls):
    """Before Acme has linked it (so no ownership row stops Globex), Acme's key policy alone refuses Globex: the
    platform may use the key only with konnect:org = Acme in the encryption context."""
    with pytest.raises(services.KeyVerificationFailed) as failure:
        link(other_org, other_org_admin, acme_policy_key)
    checklist = failure.value.checklist
    assert checklist.get("describe_key").verdict == Verdict.PASS  # the statement grants DescribeKey to anyone's use
    round_trip = checklist.get("round_trip")
    assert (round_trip.verdict, round_trip.error_code) == (Verdict.FAIL, "key_access_denied")
    assert str(other_org.pk) in round_trip.explanation
    assert kms_calls(organization=other_org, operation="GenerateDataKey").get().outcome == "key_access_denied"
    assert not EncryptionKey.objects.exists()
    assert verify_key(organization=other_org, region="us", key_ref=acme_policy_key).failures == [round_trip]
