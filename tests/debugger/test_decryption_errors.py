"""The CMEK lifecycle as the Debugger pages show it: readable, revoked (typed error cards, 200), restored.

Each case writes through the ingest API under the organization's CMEK in the local KMS, changes the key
the way a customer would in AWS, and reads with a cold data-key cache (the revocation bound has passed).
"""

import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from debugger import services
from debugger.models import PayloadCapture, RequestLog, Trace
from devtools import local_kms
from encryption_keys.models import EncryptionKey
from tests import factories
from tests.debugger.conftest import BODY_SECRET, HEADER_SECRET, LOG_SECRET, PATH, QUERY_SECRET, fresh_reader

pytestmark = pytest.mark.django_db


@pytest.fixture
def captured(linked_cmek, debug_session, ingest):
    """Two traces stored under the CMEK; returns the first trace id."""
    return ingest(2)[0]


def urls(session, trace_id):
    cp, pk = session.control_plane_id, session.pk
    return {
        "panel": reverse("debug_payload_panel", args=[cp, pk, trace_id, "client_request"]),
        "traces": reverse("debug_session_detail", args=[cp, pk]),
        "logs": reverse("debug_session_logs", args=[cp, pk]),
        "trace": reverse("debug_trace_detail", args=[cp, pk, trace_id]),
    }


def card_code(html: str) -> str | None:
    marker = 'data-code="'
    return html.split(marker, 1)[1].split('"', 1)[0] if marker in html else None


def test_disable_then_reenable_the_cmek(login, org_admin, debug_session, captured, linked_cmek):
    client, page = login(org_admin), urls(debug_session, captured)
    readable = client.get(page["panel"], headers={"HX-Request": "true"}).content.decode()
    assert BODY_SECRET in readable and card_code(readable) is None

    local_kms.disable_key(linked_cmek)
    fresh_reader()
    disabled = client.get(page["panel"], headers={"HX-Request": "true"})
    html = disabled.content.decode()
    assert disabled.status_code == 200
    assert card_code(html) == "key_disabled"
    assert "Key disabled" in html and linked_cmek in html and "Acme US key" in html
    assert "Re-enable the key" in html
    assert BODY_SECRET not in html and HEADER_SECRET not in html
    # The traces table still lists the metadata, with the preview marked unreadable.
    traces = client.get(page["traces"]).content.decode()
    assert traces.count("Key disabled") == 2 and captured in traces and "route-orders" in traces
    assert PATH not in traces
    # The trace page itself needs no key: spans and the payload placeholders are there.
    assert "kong.phase.access" in client.get(page["trace"]).content.decode()
    # The log lines say, once for all four, why they cannot be read.
    logs = client.get(page["logs"]).content.decode()
    assert "4 log lines unreadable: key disabled" in logs and logs.count('data-code="key_disabled"') == 1
    assert LOG_SECRET not in logs

    local_kms.enable_key(linked_cmek)
    fresh_reader()
    restored = client.get(page["panel"], headers={"HX-Request": "true"}).content.decode()
    assert BODY_SECRET in restored and card_code(restored) is None
    assert client.get(page["logs"]).content.decode().count(LOG_SECRET) == 2
    assert (Trace.objects.count(), PayloadCapture.objects.count(), RequestLog.objects.count()) == (2, 4, 4)


def test_pending_deletion_card_shows_the_date(login, org_admin, debug_session, captured, linked_cmek):
    deletion = local_kms.schedule_key_deletion(linked_cmek, days=7)
    EncryptionKey.objects.filter(key_ref=linked_cmek).update(deletion_date=deletion)
    fresh_reader()
    html = login(org_admin).get(urls(debug_session, captured)["panel"]).content.decode()
    assert card_code(html) == "key_pending_deletion"
    assert deletion.strftime("%Y-%m-%d") in html and "cancel-key-deletion" in html
    local_kms.cancel_key_deletion(linked_cmek)


def test_access_denied_card(login, org_admin, debug_session, captured, linked_cmek):
    local_kms.put_key_policy(linked_cmek, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}]})
    fresh_reader()
    html = login(org_admin).get(urls(debug_session, captured)["panel"]).content.decode()
    assert card_code(html) == "key_access_denied"
    assert "key policy" in html and linked_cmek in html


def test_key_not_found_card(login, org_admin, debug_session, captured, linked_cmek):
    local_kms.delete_key_material_or_key(linked_cmek)
    fresh_reader()
    response = login(org_admin).get(urls(debug_session, captured)["panel"])
    assert response.status_code == 200
    assert card_code(response.content.decode()) == "key_not_found"


def test_kms_unavailable_card_retries_by_itself_a_bounded_number_of_times(login, org_admin, debug_session, captured,
                                                                          local_kms):
    client, panel = login(org_admin), urls(debug_session, captured)["panel"]
    local_kms.stop()
    try:
        fresh_reader()
        first = client.get(panel, headers={"HX-Request": "true"}).content.decode()
        fresh_reader()
        last = client.get(panel, {"attempt": "3"}, headers={"HX-Request": "true"}).content.decode()
    finally:
        local_kms.start()
    assert card_code(first) == "kms_unavailable"
    assert f'hx-get="{panel}?attempt=1" hx-trigger="load delay:5s"' in first
    assert "Retry now" in first and f'href="{panel}"' in first
    assert card_code(last) == "kms_unavailable" and 'hx-trigger="load delay:5s"' not in last
    assert "Automatic retries stopped" in last
    fresh_reader()
    assert BODY_SECRET in client.get(panel, {"attempt": "1"}, headers={"HX-Request": "true"}).content.decode()


def test_shredded_data_key_card(login, org_admin, debug_session, captured):
    services.session_data_keys_shred(sessions=[debug_session])
    html = login(org_admin).get(urls(debug_session, captured)["panel"]).content.decode()
    assert card_code(html) == "data_key_shredded"
    assert "destroyed" in html and BODY_SECRET not in html


def test_integrity_card_for_a_tampered_value(login, org_admin, debug_session, captured):
    capture = PayloadCapture.objects.get(trace__trace_id=captured, kind="client_request")
    tampered = bytearray(bytes(capture.body.envelope))
    tampered[-1] ^= 0x01
    with connection.cursor() as cursor:
        cursor.execute("UPDATE debugger_payloadcapture SET body = %s WHERE id = %s",
                       [bytes(tampered), capture.pk.hex if connection.vendor == "sqlite" else capture.pk])
    html = login(org_admin).get(urls(debug_session, captured)["panel"]).content.decode()
    assert card_code(html) == "integrity"
    assert bytes(tampered).hex() not in html


def test_a_value_copied_to_another_row_does_not_decrypt(login, org_admin, debug_session, captured, ingest):
    other = PayloadCapture.objects.exclude(trace__trace_id=captured).filter(kind="client_request").first()
    mine = PayloadCapture.objects.get(trace__trace_id=captured, kind="client_request")
    PayloadCapture.objects.filter(pk=mine.pk).update(body=other.body)
    assert card_code(login(org_admin).get(urls(debug_session, captured)["panel"]).content.decode()) == "integrity"


def test_a_page_of_50_traces_costs_one_decrypt_per_data_key(login, org_admin, debug_session, ingest, kms_calls,
                                                            make_session, dp_client):
    ingest(50)
    fresh_reader()
    before = kms_calls(operation="Decrypt").count()
    response = login(org_admin).get(urls(debug_session, "0" * 32)["traces"])
    assert response.content.decode().count(f"<code>{PATH}</code>") == 50
    data_keys = {capture.url.data_key_id for capture in PayloadCapture.objects.filter(kind="client_request")}
    assert len(data_keys) == 1
    assert kms_calls(operation="Decrypt").count() - before <= len(data_keys)
    # The logs tab: one more Decrypt for the log key, whatever the number of lines.
    before = kms_calls(operation="Decrypt").count()
    login(org_admin).get(urls(debug_session, "0" * 32)["logs"])
    assert kms_calls(operation="Decrypt").count() - before == 1


def test_no_plaintext_in_logs(caplog, login, org_admin, debug_session, linked_cmek, ingest):
    caplog.set_level(logging.DEBUG)
    trace_id = ingest(1)[0]
    page = urls(debug_session, trace_id)
    client = login(org_admin)
    client.get(page["panel"])
    local_kms.disable_key(linked_cmek)
    fresh_reader()
    client.get(page["panel"])
    client.get(page["logs"])
    local_kms.enable_key(linked_cmek)
    warnings = [r.getMessage() for r in caplog.records if r.name == "debugger.views"]
    assert len(warnings) == 1 and "key_disabled" in warnings[0] and trace_id in warnings[0]
    text = "\n".join(record.getMessage() + str(record.args) for record in caplog.records)
    for secret in (BODY_SECRET, HEADER_SECRET, QUERY_SECRET, LOG_SECRET):
        assert secret not in text


def test_payloads_expire_after_three_days(debug_session, captured):
    capture = PayloadCapture.objects.first()
    assert capture.expires_at - capture.created_at == timedelta(days=3)  # not "within a minute of now": load-proof
    assert capture.created_at <= timezone.now()


def test_the_card_tells_each_role_what_it_can_do(login, org, org_admin, control_plane, debug_session, captured,
                                                 linked_cmek):
    """An Organization Admin is told how to re-enable the key; a Debug Session Creator, who cannot, whom to ask."""
    creator = factories.make_role_user(org, "debug_session_creator", control_plane)
    local_kms.disable_key(linked_cmek)
    fresh_reader()
    panel = urls(debug_session, captured)["panel"]
    admin_card = login(org_admin).get(panel, headers={"HX-Request": "true"}).content.decode()
    fresh_reader()
    creator_card = login(creator).get(panel, headers={"HX-Request": "true"}).content.decode()
    assert card_code(admin_card) == card_code(creator_card) == "key_disabled"
    assert "aws kms enable-key" in admin_card and "Ask an Organization Admin" not in admin_card
    assert "Ask an Organization Admin" in creator_card and "aws kms enable-key" not in creator_card
    assert BODY_SECRET not in admin_card + creator_card
