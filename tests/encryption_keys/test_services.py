"""link_key / unlink_key / check_key_health against the local KMS server and the real database."""

import pytest
from django.core.exceptions import PermissionDenied

from devtools import local_kms as kms_admin
from encryption_keys import keyring, services
from encryption_keys.envelope import DecryptionError
from encryption_keys.models import DataKey, EncryptionKey, KeyStatus, KeyStatusChange
from konnect_admin.models import AuditEvent
from tests import factories
from tests.testapp.models import SealedNote

pytestmark = pytest.mark.django_db
SECRET = "card 4111-1111-1111-1111"


def link(org, admin, arn, region="us", name="Acme US"):
    return services.link_key(organization=org, region=region, key_ref=arn, name=name, description="d", actor=admin)


@pytest.fixture
def linked(org, org_admin, cmek):
    return link(org, org_admin, cmek).key


def test_link_stores_the_key_its_metadata_history_and_an_audit_row(org, org_admin, cmek):
    result = link(org, org_admin, cmek)
    key = EncryptionKey.objects.get(organization=org, region="us")
    assert key == result.key and result.checklist.ok
    assert (key.key_ref, key.name, key.status, key.linked_by) == (cmek, "Acme US", KeyStatus.HEALTHY, org_admin)
    assert key.linked_at is not None and key.last_checked_at is not None
    assert key.kms_metadata["multi_region"] is True and key.kms_metadata["replica_regions"] == ["us-east-2", "us-west-2"]
    assert list(key.status_changes.values_list("status", flat=True)) == [KeyStatus.HEALTHY]
    event = AuditEvent.objects.get(action="encryption_key.linked")
    assert (event.organization, event.actor, event.target_id) == (org, org_admin, str(key.pk))
    assert event.details["key_ref"] == cmek and event.details["checks"]["round_trip"] == "pass"


def test_link_with_rotation_off_is_allowed_but_flagged(org, org_admin, cmek):
    kms_admin.set_key_rotation(cmek, False)
    assert link(org, org_admin, cmek).key.status == KeyStatus.ROTATION_DISABLED


def test_failed_check_links_nothing_and_carries_the_checklist(org, org_admin, cmek):
    kms_admin.disable_key(cmek)
    with pytest.raises(services.KeyVerificationFailed) as failure:
        link(org, org_admin, cmek)
    assert failure.value.checklist.get("key_state").verdict == "fail"
    assert "Key enabled" in str(failure.value)
    assert not EncryptionKey.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="encryption_key.").exists()


@pytest.mark.parametrize("role", ["org_admin_read_only", "cp_admin_team", "member"])
def test_only_an_org_admin_links(org, cmek, role, kms_calls):
    user = factories.make_role_user(org, role)
    with pytest.raises(PermissionDenied):
        link(org, user, cmek)
    assert not EncryptionKey.objects.exists()
    assert kms_calls().count() == 0  # refused before asking KMS anything


def test_an_admin_of_another_org_cannot_link_here(org, other_org_admin, cmek):
    with pytest.raises(PermissionDenied):
        link(org, other_org_admin, cmek)


def test_one_key_per_org_and_region(org, org_admin, linked):
    other = kms_admin.create_key(region="us-east-2", multi_region=True)
    with pytest.raises(services.KeyAlreadyLinked):
        link(org, org_admin, other)
    eu = kms_admin.create_key(region="eu-west-1", multi_region=True)
    kms_admin.replicate_key(eu, to_region="eu-central-1")
    assert link(org, org_admin, eu, region="eu").key.region == "eu"


def test_after_linking_new_data_keys_are_wrapped_by_the_cmek(org, org_admin, cmek, platform_keys, kms_calls):
    before = SealedNote.objects.create(organization=org, text=SECRET)
    assert DataKey.objects.get().wrapping_key_ref == platform_keys["us"]
    link(org, org_admin, cmek)
    after = SealedNote.objects.create(organization=org, text=SECRET)
    new_dek = DataKey.objects.get(wrapping_key_ref=cmek)
    assert DataKey.objects.count() == 2
    [generate] = [call for call in kms_calls(operation="GenerateDataKey", key_ref=cmek)
                  if call.encryption_context.get("konnect:datakey") == str(new_dek.pk)]
    assert generate.encryption_context == {
        "konnect:org": str(org.pk), "konnect:region": "us", "konnect:purpose": "debugger.payload",
        "konnect:datakey": str(new_dek.pk),
    }
    assert generate.organization_id == org.pk and generate.outcome == "ok"
    keyring.reset_for_tests()  # a fresh reader unwraps both DEKs through KMS
    assert SealedNote.objects.get(pk=before.pk).text.reveal() == SECRET
    assert SealedNote.objects.get(pk=after.pk).text.reveal() == SECRET
    assert [call.encryption_context for call in kms_calls(operation="Decrypt", key_ref=cmek)
            if call.encryption_context.get("konnect:datakey") == str(new_dek.pk)] == [generate.encryption_context]


def test_other_organizations_are_not_affected_by_a_link(org, other_org, org_admin, cmek, platform_keys):
    link(org, org_admin, cmek)
    SealedNote.objects.create(organization=other_org, text=SECRET)
    assert DataKey.objects.get(organization=other_org).wrapping_key_ref == platform_keys["us"]


def test_unlink_sends_new_data_back_to_the_platform_key_and_keeps_old_data_readable(
    org, org_admin, linked, cmek, platform_keys
):
    under_cmek = SealedNote.objects.create(organization=org, text=SECRET)
    services.unlink_key(key=linked, actor=org_admin)
    assert not EncryptionKey.objects.exists()
    SealedNote.objects.create(organization=org, text=SECRET)
    assert set(DataKey.objects.values_list("wrapping_key_ref", flat=True)) == {cmek, platform_keys["us"]}
    keyring.reset_for_tests()
    assert SealedNote.objects.get(pk=under_cmek.pk).text.reveal() == SECRET
    event = AuditEvent.objects.get(action="encryption_key.unlinked")
    assert event.actor == org_admin and event.details == {
        "region": "us", "key_ref": cmek, "data_keys_still_wrapped": 1}


def test_read_only_admin_cannot_unlink(org, linked):
    with pytest.raises(PermissionDenied):
        services.unlink_key(key=linked, actor=factories.make_role_user(org, "org_admin_read_only"))
    assert EncryptionKey.objects.filter(pk=linked.pk).exists()


def test_health_check_of_a_healthy_key_records_the_check_only(linked, org_admin):
    result = services.check_key_health(key=linked, actor=org_admin)
    assert result.key.status == KeyStatus.HEALTHY and not result.changed
    assert KeyStatusChange.objects.filter(key=linked).count() == 1  # the link only
    assert AuditEvent.objects.filter(action="encryption_key.checked", actor=org_admin).count() == 1
    assert not AuditEvent.objects.filter(action="encryption_key.status_changed").exists()


def test_disabled_key_flips_status_and_evicts_cached_data_keys(org, linked, cmek):
    note = SealedNote.objects.create(organization=org, text=SECRET)
    note = SealedNote.objects.get(pk=note.pk)
    assert note.text.reveal() == SECRET  # its DEK is now cached in this process
    kms_admin.disable_key(cmek)
    result = services.check_key_health(key=linked)
    assert result.changed and result.previous_status == KeyStatus.HEALTHY
    assert EncryptionKey.objects.get().status == KeyStatus.DISABLED
    change = KeyStatusChange.objects.filter(key=linked).first()
    assert (change.previous_status, change.status) == (KeyStatus.HEALTHY, KeyStatus.DISABLED)
    event = AuditEvent.objects.get(action="encryption_key.status_changed")
    assert event.actor is None and event.actor_label == "system" and event.details["status"] == "disabled"
    # The cached DEK was dropped: the revoked key stops decrypting now, not after the cache TTL.
    with pytest.raises(DecryptionError) as error:
        SealedNote.objects.get(pk=note.pk).text.reveal()
    assert error.value.code == "key_disabled"


def test_pending_deletion_stores_the_date(linked, cmek):
    when = kms_admin.schedule_key_deletion(cmek, days=10)
    key = services.check_key_health(key=linked).key
    assert key.status == KeyStatus.PENDING_DELETION
    assert abs((key.deletion_date - when).total_seconds()) < 2
    assert key.kms_metadata["key_state"] == "PendingDeletion"


def test_policy_deny_for_the_organization_is_access_denied(org, linked, cmek):
    from tests.encryption_keys.test_verification import deny_for

    kms_admin.put_key_policy(cmek, deny_for(org, action="kms:Decrypt"))
    key = services.check_key_health(key=linked).key
    assert key.status == KeyStatus.ACCESS_DENIED
    assert key.last_error.startswith("Decrypt:")


def test_deleted_key_is_not_found(linked, cmek):
    kms_admin.delete_key_material_or_key(cmek)
    assert services.check_key_health(key=linked).key.status == KeyStatus.NOT_FOUND


def test_unreachable_kms_is_unreachable_not_revoked(linked, local_kms):
    local_kms.stop()
    try:
        key = services.check_key_health(key=linked).key
    finally:
        local_kms.start()
    assert key.status == KeyStatus.UNREACHABLE and key.is_usable


def test_rotation_turned_off_then_key_recovers(linked, cmek):
    kms_admin.set_key_rotation(cmek, False)
    assert services.check_key_health(key=linked).key.status == KeyStatus.ROTATION_DISABLED
    kms_admin.disable_key(cmek)
    assert services.check_key_health(key=linked).key.status == KeyStatus.DISABLED
    kms_admin.enable_key(cmek)
    kms_admin.set_key_rotation(cmek, True)
    key = services.check_key_health(key=linked).key
    assert key.status == KeyStatus.HEALTHY and key.kms_metadata["rotation_enabled"] is True
    assert list(KeyStatusChange.objects.filter(key=linked).order_by("created_at", "id")
                .values_list("status", flat=True)) == ["healthy", "rotation_disabled", "disabled", "healthy"]


def test_read_only_admin_cannot_run_a_check(org, linked):
    with pytest.raises(PermissionDenied):
        services.check_key_health(key=linked, actor=factories.make_role_user(org, "org_admin_read_only"))


def test_key_update_renames_with_an_audit_row(linked, org_admin):
    services.key_update(key=linked, name="Renamed", description="d", actor=org_admin)
    assert EncryptionKey.objects.get().name == "Renamed"
    assert AuditEvent.objects.get(action="encryption_key.updated").details == {"fields": ["name"]}
    services.key_update(key=linked, name="Renamed", description="d", actor=org_admin)
    assert AuditEvent.objects.filter(action="encryption_key.updated").count() == 1
