"""The secret-resolution log (30 days) and the key-usage log (90 days) are purged by a dry-run-first command."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from encryption_keys.models import KmsCall
from konnect_admin import retention
from konnect_admin.models import AuditEvent
from tests import factories
from vault.models import SecretResolution

pytestmark = pytest.mark.django_db


def resolutions(control_plane, *, days_ago: float, count: int = 1) -> None:
    rows = SecretResolution.objects.bulk_create(
        SecretResolution(control_plane=control_plane, reference=f"{{vault://p/k{i}}}", outcome="ok")
        for i in range(count)
    )
    SecretResolution.objects.filter(pk__in=[row.pk for row in rows]).update(
        created_at=timezone.now() - timedelta(days=days_ago)
    )


def kms_calls(organization, *, days_ago: float, count: int = 1) -> None:
    KmsCall.objects.bulk_create(
        KmsCall(organization=organization, key_ref="arn:aws:kms:us-west-2:111122223333:key/x", operation="Decrypt",
                outcome="ok", latency_ms=1.0, created_at=timezone.now() - timedelta(days=days_ago))
        for _ in range(count)
    )


@pytest.fixture
def logs(org, other_org, control_plane):
    foreign = factories.make_control_plane(other_org, name="foreign")
    resolutions(control_plane, days_ago=31, count=3)
    resolutions(control_plane, days_ago=29, count=2)
    resolutions(foreign, days_ago=45, count=4)
    resolutions(foreign, days_ago=1)
    kms_calls(org, days_ago=91, count=2)
    kms_calls(org, days_ago=89)
    kms_calls(None, days_ago=200)  # a platform-key call of no organization
    return control_plane, foreign


def test_dry_run_reports_and_changes_nothing(logs, capsys):
    call_command("purge_logs")
    out = capsys.readouterr().out
    assert "Would delete 7 row(s) of the secret-resolution log older than 30 day(s), across 2 organization(s)." in out
    assert "Would delete 3 row(s) of the key-usage log (KMS calls) older than 90 day(s), across 1 organization(s)." \
        in out
    assert "Dry run" in out
    assert (SecretResolution.objects.count(), KmsCall.objects.count()) == (10, 4)
    assert not AuditEvent.objects.filter(action__endswith="_log_purged").exists()


def test_yes_deletes_only_rows_past_retention_and_audits_each_organization(org, other_org, logs, capsys):
    control_plane, foreign = logs
    call_command("purge_logs", "--yes")

    out, err = capsys.readouterr()
    assert "] 7/7 rows of the secret-resolution log" in err and "] 3/3 rows of the key-usage log" in err
    assert "Deleted 7 row(s) of the secret-resolution log" in out
    assert "Deleted 3 row(s) of the key-usage log (KMS calls)" in out
    assert SecretResolution.objects.filter(control_plane=control_plane).count() == 2
    assert SecretResolution.objects.filter(control_plane=foreign).count() == 1
    assert list(KmsCall.objects.values_list("organization_id", flat=True)) == [org.pk]  # the 89-day-old call
    events = {(e.organization_id, e.action): e.details["rows"] for e in AuditEvent.objects.all()
              if e.action.endswith("_log_purged")}
    assert events == {(org.pk, "vault.resolution_log_purged"): 3, (other_org.pk, "vault.resolution_log_purged"): 4,
                      (org.pk, "encryption_key.usage_log_purged"): 2}

    call_command("purge_logs", "--yes")  # nothing left to do: no new audit events
    assert AuditEvent.objects.filter(action__endswith="_log_purged").count() == 3


def test_retention_follows_the_setting_and_batches(logs, settings, monkeypatch):
    settings.SECRET_RESOLUTION_RETENTION_DAYS = 10
    monkeypatch.setattr(retention, "BATCH", 2)
    steps = []
    log = next(log for log in retention.LOGS if log.model_label == "vault.SecretResolution")
    deleted = log.execute(progress=lambda done, total: steps.append((done, total)))
    assert deleted.total() == 9 and SecretResolution.objects.count() == 1
    assert steps == [(2, 9), (4, 9), (6, 9), (8, 9), (9, 9)]
