"""The secret-resolution log is kept SECRET_RESOLUTION_RETENTION_DAYS, then purged by a dry-run-first command."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from konnect_admin.models import AuditEvent
from tests import factories
from vault import retention
from vault.models import SecretResolution

pytestmark = pytest.mark.django_db


def log(control_plane, *, days_ago: float, count: int = 1) -> None:
    rows = SecretResolution.objects.bulk_create(
        SecretResolution(control_plane=control_plane, reference=f"{{vault://p/k{i}}}", outcome="ok")
        for i in range(count)
    )
    SecretResolution.objects.filter(pk__in=[row.pk for row in rows]).update(
        created_at=timezone.now() - timedelta(days=days_ago)
    )


@pytest.fixture
def logs(org, other_org, control_plane):
    foreign = factories.make_control_plane(other_org, name="foreign")
    log(control_plane, days_ago=31, count=3)
    log(control_plane, days_ago=29, count=2)
    log(foreign, days_ago=45, count=4)
    log(foreign, days_ago=1)
    return control_plane, foreign


def test_dry_run_reports_and_changes_nothing(logs, capsys):
    call_command("purge_secret_resolutions")
    out = capsys.readouterr().out
    assert "Would delete 7 secret-resolution log row(s) older than 30 day(s), across 2 organization(s)." in out
    assert "Dry run" in out
    assert SecretResolution.objects.count() == 10
    assert not AuditEvent.objects.filter(action="vault.resolution_log_purged").exists()


def test_yes_deletes_only_rows_past_retention_and_audits_each_organization(org, other_org, logs, capsys):
    control_plane, foreign = logs
    call_command("purge_secret_resolutions", "--yes")

    assert "Deleted 7 secret-resolution log row(s)" in capsys.readouterr().out
    assert SecretResolution.objects.filter(control_plane=control_plane).count() == 2
    assert SecretResolution.objects.filter(control_plane=foreign).count() == 1
    events = {e.organization_id: e.details for e in AuditEvent.objects.filter(action="vault.resolution_log_purged")}
    assert {org.pk: events[org.pk]["rows"], other_org.pk: events[other_org.pk]["rows"]} == {org.pk: 3, other_org.pk: 4}
    assert events[org.pk]["older_than_days"] == 30

    call_command("purge_secret_resolutions", "--yes")  # nothing left to do: no new audit events
    assert AuditEvent.objects.filter(action="vault.resolution_log_purged").count() == 2


def test_retention_follows_the_setting_and_batches(logs, settings, monkeypatch):
    settings.SECRET_RESOLUTION_RETENTION_DAYS = 10
    monkeypatch.setattr(retention, "BATCH", 2)
    steps = []
    deleted = retention.purge_execute(progress=lambda done, total: steps.append((done, total)))
    assert deleted.total() == 9 and SecretResolution.objects.count() == 1
    assert steps == [(2, 9), (4, 9), (6, 9), (8, 9), (9, 9)]
