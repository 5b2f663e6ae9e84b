"""`manage.py purge_debugger_data`: payloads after 3 days, sessions after retention, keys shredded first."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from debugger import partitions
from debugger.models import PAYLOAD_RETENTION, Blob, DebugSession, PayloadCapture, RequestLog, Trace
from encryption_keys import keyring
from encryption_keys.models import DataKey
from konnect_admin.models import AuditEvent

pytestmark = pytest.mark.django_db


def purge(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("purge_debugger_data", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def keys_of(session, purpose=None):
    keys = DataKey.objects.filter(scope_ref=f"{session.control_plane_id}/{session.pk}")
    return keys.filter(purpose=purpose) if purpose else keys


def stored_days_ago(payloads, days):
    """Payloads stored `days` days and a minute ago, in that day's partition on PostgreSQL (made if missing):
    four days back, both their expiry and their whole day have passed."""
    stored = timezone.now() - timedelta(days=days, minutes=1)
    partitions.ensure(start=stored.date(), ahead=0)
    payloads.update(created_at=stored, expires_at=stored + PAYLOAD_RETENTION)


@pytest.fixture
def old_and_new(debug_session, make_session, ingest):
    old, new = debug_session, make_session(name="new")
    ingest(2, session=old)
    ingest(1, session=new)
    DebugSession.objects.filter(pk=old.pk).update(retain_until=timezone.now() - timedelta(seconds=1))
    return old, new


def test_dry_run_changes_nothing(old_and_new):
    out, _ = purge()
    assert "Would remove 1 debug session(s)" in out and "2 trace(s)" in out and "Dry run" in out
    assert "at least 2 data key(s)" in out
    assert DebugSession.objects.count() == 2 and not DataKey.objects.filter(shredded_at__isnull=False).exists()


def test_sessions_past_retention_are_shredded_then_deleted(old_and_new):
    old, new = old_and_new
    out, err = purge("--yes")
    assert "] 1/1 sessions" in err  # the progress bar
    assert "Purged 1 session(s) (2 trace(s), 4 log line(s)), 4 payload capture(s)" in out
    assert "shredded 2 data key(s)" in out
    assert list(DebugSession.objects.all()) == [new]
    assert all(key.shredded_at and key.wrapped is None for key in keys_of(old))
    assert keys_of(old).count() == 2
    assert all(key.wrapped for key in keys_of(new))
    assert Trace.objects.filter(session=new).count() == 1 and RequestLog.objects.filter(session=new).count() == 2
    event = AuditEvent.objects.get(action="debugger.retention_purged")
    assert event.organization == old.organization and event.actor is None


def test_payloads_past_three_days_go_and_their_key_is_shredded(debug_session, ingest, dp_client):
    session = debug_session
    ingest(2, session=session)
    dp_client.post(f"/api/us/v1/debugger/sessions/{session.pk}/done")
    stored_days_ago(PayloadCapture.objects.all(), 4)
    DebugSession.objects.filter(pk=session.pk).update(ended_at=timezone.now() - PAYLOAD_RETENTION - timedelta(minutes=6))
    out, _ = purge("--yes")
    assert "4 payload capture(s)" in out
    assert not PayloadCapture.objects.exists()
    assert Trace.objects.count() == 2 and RequestLog.objects.count() == 4  # the session stays, with its logs
    assert keys_of(session, "debugger.payload").get().shredded_at is not None
    assert keys_of(session, "debugger.log").get().shredded_at is None


def test_payload_key_stays_while_some_payloads_remain(debug_session, ingest):
    session = debug_session
    ingest(2, session=session)
    first = PayloadCapture.objects.order_by("created_at", "id").first()
    stored_days_ago(PayloadCapture.objects.filter(pk=first.pk), 4)
    purge("--yes")
    assert PayloadCapture.objects.count() == 3
    assert keys_of(session, "debugger.payload").get().shredded_at is None


def test_expired_blobs_go_and_their_retired_keys_are_shredded(dp_client):
    url = "/api/us/v0/blobs/"
    dp_client.put(url + "old", b"x", content_type="text/plain")
    Blob.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    DataKey.objects.update(encrypt_until=timezone.now() - timedelta(seconds=1))
    keyring.reset_for_tests()
    dp_client.put(url + "new", b"y", content_type="text/plain")
    out, _ = purge("--yes")
    assert "1 blob(s)" in out
    assert list(Blob.objects.values_list("key", flat=True)) == ["new"]
    shredded, live = DataKey.objects.filter(shredded_at__isnull=False), DataKey.objects.filter(shredded_at__isnull=True)
    assert shredded.count() == 1 and live.count() == 1
    assert Client(HTTP_AUTHORIZATION=dp_client.defaults["HTTP_AUTHORIZATION"]).get(url + "new").content == b"y"


def test_nothing_to_purge(db):
    out, _ = purge("--yes")
    assert "Purged 0 session(s)" in out
