"""The scheduled key-health sweep: one DescribeKey per linked and per platform key, KEY_HEALTH_SWEEP_CONCURRENCY
in flight; a status change goes through record_key_health (history and audit once); platform keys are kept in
PlatformKeyHealth for the operator. Real local KMS over HTTP; the sweep task runs as the worker would run it."""

import logging
import threading

import pytest
from django.urls import reverse
from django.utils import timezone

from devtools import local_kms
from encryption_keys import services, sweep
from encryption_keys.models import EncryptionKey, KeyStatus, KeyStatusChange, PlatformKeyHealth
from encryption_keys.tasks import sweep_key_health
from konnect_admin.models import AuditEvent, User
from tests import factories

pytestmark = pytest.mark.django_db

DESCRIBE = "TrentService.DescribeKey"


def link(org, actor=None, *, region="us"):
    arn = local_kms.create_key(region="us-west-2", description=f"key of {org.name}", multi_region=True)
    local_kms.replicate_key(arn, to_region="us-east-2")
    actor = actor or factories.make_role_user(org, "org_admin")
    return services.link_key(organization=org, region=region, key_ref=arn, name=f"{org.name} US", actor=actor).key


def sweep_calls(kms_calls, before):
    """(operation, key ARN) of every KMS call logged since `before` (the id of the last earlier call)."""
    return sorted(kms_calls(id__gt=before).values_list("operation", "key_ref"))


def last_call_id(kms_calls):
    return kms_calls().order_by("-id").values_list("id", flat=True).first() or 0


def events(action, key):
    return AuditEvent.objects.filter(action=action, target_id=str(key.pk))


class InFlight:
    """Wraps the local KMS server's app: counts DescribeKey calls in flight at once, and holds each until
    `parties` are in flight together (or the barrier times out, which makes the count come out short)."""

    def __init__(self, httpd, parties: int):
        self.httpd, self.app = httpd, httpd.app
        self.lock, self.now, self.most, self.received = threading.Lock(), 0, 0, 0
        self.barrier = threading.Barrier(parties, timeout=30)
        httpd.app = self

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET") != DESCRIBE:
            return self.app(environ, start_response)
        with self.lock:
            self.now += 1
            self.received += 1
            self.most = max(self.most, self.now)
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            pass
        try:
            return self.app(environ, start_response)
        finally:
            with self.lock:
                self.now -= 1

    def remove(self):
        self.httpd.app = self.app


@pytest.fixture
def orgs_with_keys(db):
    return [link(factories.make_organization(f"Org {index}")) for index in range(3)]


def test_a_sweep_makes_exactly_one_describe_key_call_per_key(orgs_with_keys, kms_calls, settings):
    before, started = last_call_id(kms_calls), timezone.now()

    outcome = sweep_key_health.call()

    platform = sorted(settings.PLATFORM_KMS_KEYS.values())
    assert sweep_calls(kms_calls, before) == sorted(
        [("DescribeKey", key.key_ref) for key in orgs_with_keys] + [("DescribeKey", arn) for arn in platform])
    assert outcome == {"keys": 3, "platform_keys": len(platform), "changed": 0, "rechecked": 0}
    for key in EncryptionKey.objects.all():
        assert key.status == KeyStatus.HEALTHY and key.last_checked_at >= started
    # Nothing changed: no history, no audit event, only the time of the check moved.
    assert not KeyStatusChange.objects.filter(created_at__gte=started).exists()
    assert not AuditEvent.objects.filter(action__in=["encryption_key.checked", "encryption_key.status_changed"],
                                         created_at__gte=started).exists()
    assert {(row.region, row.key_ref, row.status) for row in PlatformKeyHealth.objects.all()} == {
        (region, arn, KeyStatus.HEALTHY) for region, arn in settings.PLATFORM_KMS_KEYS.items()}


def test_the_sweep_keeps_the_rotation_flag_of_the_last_full_check(org, org_admin, kms_calls):
    key = link(org, org_admin)
    local_kms.set_key_rotation(key.key_ref, False)
    assert services.check_key_health(key=key, actor=org_admin).key.status == KeyStatus.ROTATION_DISABLED
    local_kms.set_key_rotation(key.key_ref, True)  # the sweep does not read rotation: "Check now" will see it
    before = last_call_id(kms_calls)

    sweep.sweep_key_health()

    key.refresh_from_db()
    assert (key.status, key.kms_metadata["rotation_enabled"]) == (KeyStatus.ROTATION_DISABLED, False)
    assert ("GetKeyRotationStatus", key.key_ref) not in sweep_calls(kms_calls, before)


def test_a_disabled_key_changes_once_through_record_key_health_and_a_full_check_clears_it(org, org_admin, kms_calls):
    key = link(org, org_admin)
    local_kms.disable_key(key.key_ref)

    assert sweep_key_health.call()["changed"] == 1
    sweep_key_health.call()  # still disabled: nothing more to record

    key.refresh_from_db()
    assert key.status == KeyStatus.DISABLED
    history = key.status_changes.exclude(previous_status="")  # linking wrote the first entry
    assert list(history.values_list("previous_status", "status")) == [("healthy", "disabled")]
    changed = events("encryption_key.status_changed", key)
    assert [(e.details["status"], e.details["source"], e.actor_id) for e in changed] == [("disabled", "sweep", None)]

    local_kms.enable_key(key.key_ref)
    before = last_call_id(kms_calls)
    outcome = sweep_key_health.call()  # DescribeKey says Enabled: the full check (here run at once) confirms it

    assert outcome["rechecked"] == 1
    key.refresh_from_db()
    assert key.status == KeyStatus.HEALTHY
    assert list(history.values_list("previous_status", "status")) == [("disabled", "healthy"), ("healthy", "disabled")]
    assert [e.details["source"] for e in events("encryption_key.status_changed", key).order_by("created_at")] == [
        "sweep", "check"]
    calls = [operation for operation, arn in sweep_calls(kms_calls, before) if arn == key.key_ref]
    assert sorted(calls) == ["Decrypt", "DescribeKey", "DescribeKey", "GenerateDataKey", "GetKeyRotationStatus"]


def test_a_key_refused_on_the_data_path_is_not_cleared_by_describe_key_alone(org, org_admin):
    key = link(org, org_admin)
    EncryptionKey.objects.filter(pk=key.pk).update(status=KeyStatus.ACCESS_DENIED, last_error="Decrypt: denied")

    result = sweep.sweep_key_health()

    assert result.recheck == [str(key.pk)] and result.changed == 0
    key.refresh_from_db()
    assert (key.status, key.last_error) == (KeyStatus.ACCESS_DENIED, "Decrypt: denied")


def test_pending_deletion_keeps_the_deletion_date_for_the_banner(org, org_admin):
    key = link(org, org_admin)
    deletion = local_kms.schedule_key_deletion(key.key_ref, days=9)

    sweep.sweep_key_health()

    key.refresh_from_db()
    assert key.status == KeyStatus.PENDING_DELETION
    assert abs((key.deletion_date - deletion).total_seconds()) < 1


def test_a_policy_that_drops_the_platform_reads_as_access_denied(org, org_admin):
    key = link(org, org_admin)
    local_kms.put_key_policy(key.key_ref, {"Version": "2012-10-17", "Statement": [
        {"Sid": "SomeoneElse", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:role/other"},
         "Action": "kms:*", "Resource": "*"}]})  # the platform's statements removed

    sweep.sweep_key_health()

    key.refresh_from_db()
    assert key.status == KeyStatus.ACCESS_DENIED
    assert "AccessDenied" in key.last_error


def test_a_key_deleted_in_kms_reads_as_not_found(org, org_admin):
    key = link(org, org_admin)
    local_kms.delete_key_material_or_key(key.key_ref)

    sweep.sweep_key_health()

    key.refresh_from_db()
    assert key.status == KeyStatus.NOT_FOUND


@pytest.mark.parametrize("concurrency", [1, 4])
def test_the_concurrency_setting_is_honoured(db, settings, local_kms, concurrency):
    keys = [link(factories.make_organization(f"Org {index}")) for index in range(6)]
    settings.KEY_HEALTH_SWEEP_CONCURRENCY = concurrency
    assert len(keys) + len(settings.PLATFORM_KMS_KEYS) == 8  # a multiple of every concurrency tried
    gate = InFlight(local_kms._httpd, concurrency)
    try:
        sweep.sweep_key_health()
    finally:
        gate.remove()

    assert (gate.received, gate.most) == (8, concurrency)


@pytest.fixture
def platform_key(settings):
    """A platform key of its own for the US region (the session's platform keys stay enabled for other tests)."""
    arn = local_kms.create_key(region="us-west-2", description="platform key us (sweep test)", multi_region=True)
    settings.PLATFORM_KMS_KEYS = {**settings.PLATFORM_KMS_KEYS, "us": arn}
    return arn


def test_a_disabled_platform_key_is_marked_and_logged_and_healthy_again_once_enabled(platform_key, caplog):
    sweep.sweep_key_health()
    first = PlatformKeyHealth.objects.get(region="us")
    assert (first.key_ref, first.status) == (platform_key, KeyStatus.HEALTHY)

    local_kms.disable_key(platform_key)
    with caplog.at_level(logging.WARNING, logger="encryption_keys.sweep"):
        assert sweep.sweep_key_health().changed == 1
        sweep.sweep_key_health()

    disabled = PlatformKeyHealth.objects.get(region="us")
    assert disabled.status == KeyStatus.DISABLED and disabled.changed_at > first.changed_at
    warnings = [r.getMessage() for r in caplog.records if r.name == "encryption_keys.sweep"]
    assert warnings == [f"platform key of region us ({platform_key}): healthy → disabled"]  # once per transition
    assert PlatformKeyHealth.objects.get(region="eu").status == KeyStatus.HEALTHY

    local_kms.enable_key(platform_key)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="encryption_keys.sweep"):
        sweep.sweep_key_health()

    healthy = PlatformKeyHealth.objects.get(region="us")
    assert healthy.status == KeyStatus.HEALTHY and healthy.changed_at > disabled.changed_at
    assert [r.getMessage() for r in caplog.records if r.name == "encryption_keys.sweep"] == [
        f"platform key of region us ({platform_key}): disabled → healthy"]


def test_a_platform_key_no_longer_configured_leaves_the_table(settings):
    sweep.sweep_key_health()
    settings.PLATFORM_KMS_KEYS = {"eu": settings.PLATFORM_KMS_KEYS["eu"]}

    sweep.sweep_key_health()

    assert list(PlatformKeyHealth.objects.values_list("region", flat=True)) == ["eu"]


def test_the_operator_console_lists_platform_key_health_read_only(client, platform_key):
    local_kms.disable_key(platform_key)
    sweep.sweep_key_health()
    client.force_login(User.objects.create_superuser(email="ops@platform.test", password="operator-long-password-1"))
    row = PlatformKeyHealth.objects.get(region="us")

    listing = client.get(reverse("admin:encryption_keys_platformkeyhealth_changelist"))
    detail = client.get(reverse("admin:encryption_keys_platformkeyhealth_change", args=[row.pk]))

    assert listing.status_code == detail.status_code == 200
    assert "Disabled" in listing.content.decode() and platform_key in detail.content.decode()
    assert 'name="_save"' not in detail.content.decode()
    assert client.get(reverse("admin:encryption_keys_platformkeyhealth_add")).status_code == 403
