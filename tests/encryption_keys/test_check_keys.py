"""`manage.py check_keys`: re-reads every linked key, prints progress and changes, flips status, audits."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from devtools import local_kms as kms_admin
from encryption_keys import services
from encryption_keys.models import EncryptionKey, KeyStatus
from konnect_admin.models import AuditEvent

pytestmark = pytest.mark.django_db


def check_keys(*args) -> str:
    out = StringIO()
    call_command("check_keys", *args, stdout=out)
    return out.getvalue()


def link(org, admin, region="us", aws=("us-west-2", "us-east-2"), name="Acme US"):
    arn = kms_admin.create_key(region=aws[0], multi_region=True)
    for replica in aws[1:]:
        kms_admin.replicate_key(arn, to_region=replica)
    return services.link_key(organization=org, region=region, key_ref=arn, name=name, actor=admin).key


def test_nothing_to_check():
    assert check_keys().strip() == "No linked keys to check."


def test_healthy_key_progress_and_summary(org, org_admin):
    key = link(org, org_admin)
    output = check_keys()
    assert f"[1/1] Acme · US · Acme US ({key.key_ref}) … Healthy" in output
    assert "automatic rotation: on" in output
    assert "Checked 1 key: 1 usable, 0 unhealthy." in output
    assert "status changed" not in output
    assert AuditEvent.objects.filter(action="encryption_key.checked", actor=None).count() == 1


def test_disabled_key_flips_status_and_the_banner_appears(org, org_admin, login):
    key = link(org, org_admin)
    client = login(org_admin)
    assert "banner-error" not in client.get(reverse("dashboard")).content.decode()
    kms_admin.disable_key(key.key_ref)
    output = check_keys()
    assert "… Disabled" in output and "status changed: healthy → disabled" in output
    assert "Checked 1 key: 0 usable, 1 unhealthy." in output
    assert EncryptionKey.objects.get().status == KeyStatus.DISABLED
    assert AuditEvent.objects.get(action="encryption_key.status_changed").details["previous_status"] == "healthy"
    body = client.get(reverse("dashboard")).content.decode()
    assert "banner banner-error" in body and "Encryption key “Acme US” (US): disabled." in body


def test_pending_deletion_prints_the_date_and_days_left(org, org_admin):
    key = link(org, org_admin)
    when = kms_admin.schedule_key_deletion(key.key_ref, days=14)
    output = check_keys()
    assert f"pending deletion on {when:%Y-%m-%d} (14 days left)" in output
    assert "automatic rotation: off" in output  # AWS reports rotation off while deletion is pending


def test_rotation_off_is_reported_but_usable(org, org_admin):
    key = link(org, org_admin)
    kms_admin.set_key_rotation(key.key_ref, False)
    output = check_keys("--fail-on-unhealthy")
    assert "Automatic rotation off" in output and "automatic rotation: off" in output
    assert "1 usable, 0 unhealthy" in output


def test_fail_on_unhealthy_exits_non_zero(org, org_admin):
    key = link(org, org_admin)
    kms_admin.disable_key(key.key_ref)
    assert "1 unhealthy" in check_keys()  # without the flag: a summary, exit 0
    with pytest.raises(CommandError, match="1 key not healthy: Acme/us: disabled"):
        check_keys("--fail-on-unhealthy")


def test_filters_by_org_name_or_id_and_region(org, org_admin, other_org, other_org_admin):
    link(org, org_admin)
    link(org, org_admin, region="eu", aws=("eu-central-1", "eu-west-1"), name="Acme EU")
    link(other_org, other_org_admin, name="Globex US")
    assert "Checked 3 keys" in check_keys()
    by_name = check_keys("--org", "Acme")
    assert "Checked 2 keys" in by_name and "Globex" not in by_name
    by_id = check_keys("--org", str(other_org.pk))
    assert "Checked 1 key:" in by_id and "Globex US" in by_id
    by_region = check_keys("--org", "Acme", "--region", "eu")
    assert "Checked 1 key:" in by_region and "Acme EU" in by_region


@pytest.mark.parametrize("args, message", [(["--org", "Nobody"], "No organization 'Nobody'"),
                                           (["--region", "xx"], "invalid choice")])
def test_bad_arguments_are_command_errors(args, message):
    with pytest.raises(CommandError, match=message):
        check_keys(*args)
