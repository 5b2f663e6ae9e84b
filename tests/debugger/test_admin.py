"""The platform admin site shows Debugger metadata, never payload or log plaintext or ciphertext."""

import base64

import pytest
from django.urls import reverse

from debugger.models import Blob, DebugSession, PayloadCapture, RequestLog, Span, Trace
from konnect_admin.models import User
from tests.debugger.conftest import BODY_SECRET, HEADER_SECRET, LOG_SECRET, QUERY_SECRET

pytestmark = pytest.mark.django_db


def test_admin_pages_carry_no_payload_data(client, ingest, dp_client):
    ingest(1)
    dp_client.put("/api/us/v0/blobs/b1", b"blob-plain-6a2f", content_type="text/plain")
    client.force_login(User.objects.create_superuser(email="ops@platform.test", password="x"))
    envelopes = [bytes(v.envelope) for c in PayloadCapture.objects.all() for v in (c.url, c.headers, c.body) if v]
    envelopes += [bytes(log.message.envelope) for log in RequestLog.objects.all()]
    envelopes += [bytes(Blob.objects.get().data.envelope)]
    pages = []
    for model in (DebugSession, Trace, Span, PayloadCapture, RequestLog, Blob):
        info = model._meta.app_label, model._meta.model_name
        changelist = client.get(reverse(f"admin:{info[0]}_{info[1]}_changelist"))
        assert changelist.status_code == 200
        change = client.get(reverse(f"admin:{info[0]}_{info[1]}_change", args=[model.objects.first().pk]))
        assert change.status_code == 200
        pages += [changelist.content.decode(), change.content.decode()]
    text = "\n".join(pages)
    for secret in (BODY_SECRET, HEADER_SECRET, QUERY_SECRET, LOG_SECRET, "blob-plain-6a2f"):
        assert secret not in text
    for envelope in envelopes:
        assert envelope.hex() not in text and base64.b64encode(envelope).decode() not in text
    assert "[encrypted]" not in text  # the encrypted fields are not even listed


def test_admin_cannot_add_change_or_delete(client, debug_session):
    client.force_login(User.objects.create_superuser(email="ops@platform.test", password="x"))
    assert client.get(reverse("admin:debugger_debugsession_add")).status_code == 403
    assert client.post(reverse("admin:debugger_debugsession_delete", args=[debug_session.pk])).status_code == 403
    assert DebugSession.objects.filter(pk=debug_session.pk).exists()
