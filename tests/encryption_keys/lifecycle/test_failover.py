"""Multi-region failover: with KMS in the key's region down, calls go to the replica in the geo's other region."""

import pytest

from encryption_keys import keyring, local_kms
from encryption_keys.local_kms import LocalKmsServer
from encryption_keys.models import EncryptionKey
from encryption_keys.providers.aws import kms
from tests.testapp.models import SealedNote

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_regions(settings, kms_server):
    """KMS in us-west-2 is the session server; us-east-2 gets its own server (same moto state)."""
    east = LocalKmsServer().start()
    settings.KMS_ENDPOINT_URLS = {"us-west-2": kms_server.endpoint_url, "us-east-2": east.endpoint_url}
    kms.reset_clients()
    yield kms_server, east
    east.stop()
    kms_server.start()


def reveal(pk):
    keyring.reset_for_tests()
    return SealedNote.objects.get(pk=pk).text.reveal()


def test_reads_and_writes_fail_over_to_the_replica(org, cmek, two_regions, kms_calls):
    west, _east = two_regions
    EncryptionKey.objects.create(organization=org, region="us", name="k", key_arn=cmek)
    before = SealedNote.objects.create(organization=org, scope_ref="before", text="written before the outage")
    west.stop()
    try:
        assert reveal(before.pk) == "written before the outage"
        during = SealedNote.objects.create(organization=org, scope_ref="during", text="written during the outage")
        assert reveal(during.pk) == "written during the outage"
        assert kms_calls(operation="GenerateDataKey", aws_region="us-east-2", outcome="ok", key_arn=cmek).count() == 1
        assert kms_calls(operation="Decrypt", aws_region="us-east-2", outcome="ok", key_arn=cmek).count() == 2
        assert kms_calls(operation="Decrypt", aws_region="us-west-2", outcome="kms_unavailable").count() == 2
        assert kms_calls(operation="GenerateDataKey", aws_region="us-west-2", outcome="kms_unavailable").count() == 1
    finally:
        west.start()
    # What the replica wrapped, the primary opens: no data is tied to the region that answered.
    assert reveal(during.pk) == "written during the outage"
    assert kms_calls(operation="Decrypt").first().aws_region == "us-west-2"


def test_a_single_region_key_does_not_fail_over(org, two_regions, kms_calls):
    west, _east = two_regions
    single = local_kms.create_key(region="us-west-2", multi_region=False)
    EncryptionKey.objects.create(organization=org, region="us", name="k", key_arn=single)
    note = SealedNote.objects.create(organization=org, text="single region")
    west.stop()
    try:
        keyring.reset_for_tests()
        result = SealedNote.objects.get(pk=note.pk).text.reveal_or_error()
    finally:
        west.start()
    assert not result.ok and result.error.code == "kms_unavailable"
    assert set(kms_calls(operation="Decrypt").values_list("aws_region", "outcome")) == {("us-west-2", "kms_unavailable")}


def test_replacement_rewraps_through_the_replica_region(org, org_admin, two_regions, cmek, new_cmek, kms_calls):
    """ReEncrypt does not fail over (source and destination are pinned), so a replacement started during an
    outage of the primary region is interrupted, loses nothing, and a resume finishes it."""
    from encryption_keys.lifecycle import replace_key, resume_rewrap
    from encryption_keys.lifecycle.models import RewrapState
    from encryption_keys.services import link_key

    west, _east = two_regions
    link_key(organization=org, region="us", key_arn=cmek, name="k", actor=org_admin)
    note = SealedNote.objects.create(organization=org, text="kept")
    job = replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=org_admin, start=False)
    west.stop()
    try:
        job = resume_rewrap(job=job, actor=org_admin, take_over=True)
        assert job.state == RewrapState.FAILED and "kms_unavailable" in job.last_error
        assert reveal(note.pk) == "kept"  # the DEK is still under the old key, read through us-east-2
    finally:
        west.start()
    job = resume_rewrap(job=job, actor=org_admin)
    assert job.state == RewrapState.COMPLETED
    assert reveal(note.pk) == "kept"
