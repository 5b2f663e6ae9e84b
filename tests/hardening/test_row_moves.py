"""The row-move attack: change only a foreign key (or an organization) in the database, then read.

Ciphertext is bound to its tenant and scope (envelope v2's AAD), and the keyring opens no envelope — v1
or v2 — whose data key belongs to another organization, region, purpose or scope than its row's
`encryption_scope()`. So a value whose row, or a parent of it, was moved reads `integrity` on every path
(model, batch, pages, APIs, data-plane resolution) and leaves a security event in the audit logs of both
organizations — never plaintext. Every encrypted field of the project is covered (tests/sealed_rows.py).
"""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from debugger.models import RequestLog
from encryption_keys import keyring
from encryption_keys.envelope import DecryptionError, ErrorCode, ScopeMismatch
from encryption_keys.scope_events import ACTION
from konnect_admin import tokens
from konnect_admin.models import AuditEvent, ControlPlane
from tests import factories
from tests.sealed_rows import (
    MOVES,
    encrypted_field_labels,
    encrypted_fields,
    reload,
    seal_tenant,
    write_legacy_v1,
)
from vault.models import Vault

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenants(local_kms):
    return seal_tenant("Acme"), seal_tenant("Globex")


def legacy(tenant):
    for row in tenant.rows():
        write_legacy_v1(row)


def label(row, field) -> str:
    return f"{row._meta.label_lower}.{field.name}"


def scope_events(organization=None):
    events = AuditEvent.objects.filter(action=ACTION)
    return events.filter(organization=organization) if organization is not None else events


def assert_no_marker(text: str, tenant) -> None:
    for marker in tenant.markers.values():
        assert marker not in text


def move(name: str):
    return next(m for m in MOVES if m.name == name)


def test_every_encrypted_field_has_row_moves(local_kms):
    """A new encrypted field (or model) needs a move here, or this fails: the matrix below covers it then."""
    a_like = seal_tenant("Coverage")
    covered: dict[str, set[str]] = {}
    for move in MOVES:
        for row in move.moved(a_like):
            for field in encrypted_fields(row):
                covered.setdefault(label(row, field), set()).add(move.name)
    assert set(covered) == encrypted_field_labels()
    to_another_org = {move.name for move in MOVES if move.new_org.__name__ == "_other_org"}
    assert all(names & to_another_org for names in covered.values()), covered


@pytest.mark.parametrize("cache", ["cold", "warm"])
@pytest.mark.parametrize("version", ["v2", "v1"])
@pytest.mark.parametrize("move", MOVES, ids=[move.name for move in MOVES])
def test_a_moved_row_reads_integrity_and_is_a_security_event(tenants, move, version, cache):
    a, b = tenants
    if version == "v1":
        legacy(a)  # the keyring check alone must refuse these: a v1 AAD names no tenant or scope
    moved = move.moved(a)
    if cache == "warm":  # the DEKs are cached when the move happens: a cache hit must be checked too
        for row in moved:
            fresh = reload(row)
            assert all(getattr(fresh, f.name).reveal_or_error().ok for f in encrypted_fields(fresh))
    move.apply(a, b)

    values = []
    for row in moved:
        fresh = reload(row)
        for field in encrypted_fields(fresh):
            sealed = getattr(fresh, field.name)
            with pytest.raises(DecryptionError) as raised:
                sealed.reveal()
            assert raised.value.code is ErrorCode.INTEGRITY and isinstance(raised.value, ScopeMismatch)
            assert a.markers[label(fresh, field)] not in str(raised.value)
            values.append(sealed)
    batch = keyring.reveal_many(values)  # the batch path (pages, resolution)
    assert [r.error.code for r in batch] == [ErrorCode.INTEGRITY] * len(values)
    assert all(r.value is None for r in batch)

    new_org = move.new_org(a, b)
    events = scope_events()
    assert {event.organization_id for event in events} == {a.org.pk, new_org.pk}
    event = scope_events(new_org).first()
    assert event.actor is None and event.details["model"] in {row._meta.label_lower for row in moved}
    assert event.details["row_scope"]["organization"] == str(new_org.pk)
    assert event.details["data_key_scope"]["organization"] == str(a.org.pk)
    assert event.details["differences"]
    assert_no_marker(json.dumps(list(events.values("details", "target_label")), default=str), a)

    untouched = [row for row in a.rows() if row not in moved]  # a control: nothing else stopped reading
    for row in untouched:
        fresh = reload(row)
        assert all(getattr(fresh, f.name).reveal_or_error().ok for f in encrypted_fields(fresh))


def test_a_cold_read_of_a_moved_row_makes_no_kms_call(tenants, kms_calls):
    """The DataKey row already says whose key it is: the moved row is refused before any Decrypt."""
    a, b = tenants
    ControlPlane.objects.filter(pk=a.cp.pk).update(organization=b.org)
    keyring.reset_for_tests()
    before = kms_calls(operation="Decrypt").count()
    assert not reload(a.secret).value.reveal_or_error().ok
    assert kms_calls(operation="Decrypt").count() == before


def assert_debugger_pages_show_integrity(client, tenant, *, control_plane) -> None:
    """The moved session's trace page, payload panel and logs page, under `control_plane`: each answers with
    the integrity card and none of the tenant's plaintext."""
    session, trace = tenant.session, tenant.trace
    for url in (
        reverse("debug_session_detail", args=[control_plane.pk, session.pk]),
        reverse("debug_payload_panel", args=[control_plane.pk, session.pk, trace.trace_id, "client_request"]),
        reverse("debug_session_logs", args=[control_plane.pk, session.pk]),
    ):
        response = client.get(url)
        body = response.content.decode()
        assert response.status_code == 200, url
        assert "integrity" in body, url
        assert_no_marker(body, tenant)


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_debugger_pages_of_a_control_plane_moved_to_another_org_show_integrity(tenants, login, version):
    """Globex's admin opens the moved control plane's session: trace page, payload panel, logs page."""
    a, b = tenants
    if version == "v1":
        legacy(a)
    ControlPlane.objects.filter(pk=a.cp.pk).update(organization=b.org)
    client = login(b.admin)
    assert_debugger_pages_show_integrity(client, a, control_plane=a.cp)
    assert scope_events(b.org).exists() and scope_events(a.org).exists()


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_debugger_pages_of_a_session_moved_to_a_sibling_control_plane_show_integrity(tenants, login, version):
    """Same organization and region, another control plane: a Debug Session Creator of `checkout` only (no role
    on `payments`) must not read a `payments` session that an UPDATE re-parented to `checkout`."""
    a, b = tenants
    if version == "v1":
        legacy(a)
    creator = factories.make_role_user(a.org, "debug_session_creator", a.sibling_cp)
    client = login(creator)
    detail = reverse("debug_session_detail", args=[a.sibling_cp.pk, a.session.pk])
    assert client.get(detail).status_code == 404  # a control: before the move, not this creator's session
    move("session_to_a_sibling_control_plane").apply(a, b)
    assert_debugger_pages_show_integrity(client, a, control_plane=a.sibling_cp)
    assert set(scope_events().values_list("organization_id", flat=True)) == {a.org.pk}


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_blob_api_of_a_blob_moved_to_another_org_answers_integrity(tenants, client, version):
    a, b = tenants
    if version == "v1":
        legacy(a)
    _, pat = tokens.personal_access_token_create(user=b.admin, organization=b.org, name="attacker")
    type(a.blob).objects.filter(pk=a.blob.pk).update(organization=b.org)
    response = client.get(f"/api/us/v0/blobs/{a.blob.key}", HTTP_AUTHORIZATION=f"Bearer {pat}")
    assert response.status_code == 409
    assert response.json()["code"] == "integrity"
    assert_no_marker(response.content.decode(), a)
    assert scope_events(b.org).exists()


@pytest.mark.parametrize("version", ["v2", "v1"])
@pytest.mark.parametrize("move", ["secret_to_another_orgs_store", "store_to_another_orgs_control_plane"])
def test_data_plane_resolution_of_a_moved_secret_answers_integrity(tenants, client, version, move):
    """The issue's attack: change only vault_secret.store_id (or the store's control plane) to Globex's."""
    a, b = tenants
    if version == "v1":
        legacy(a)
    next(m for m in MOVES if m.name == move).apply(a, b)
    prefix = b.vault.prefix if move == "secret_to_another_orgs_store" else a.vault.prefix
    if move == "store_to_another_orgs_control_plane":  # Globex points a vault of its own at the moved store
        b.vault.config_store = a.store
        b.vault.prefix = "stolen"
        b.vault.save()
        prefix = "stolen"
    _, dp_token = tokens.data_plane_token_create(actor=b.admin, control_plane=b.cp, name="dp")
    reference = f"{{vault://{prefix}/{a.secret.key}}}"
    response = client.post("/api/us/v1/vault/resolve", {"references": [reference]}, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {dp_token}")
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "integrity"
    assert_no_marker(response.content.decode(), a)
    assert scope_events(b.org).exists() and scope_events(a.org).exists()


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_data_plane_resolution_of_a_store_moved_to_a_sibling_control_plane_answers_integrity(tenants, client, version):
    """`UPDATE vault_configstore SET control_plane_id = <checkout>`: checkout's data plane, pointing a vault of its
    own at the moved store, must not resolve payments' secrets (its data planes may be run by other people)."""
    a, b = tenants
    if version == "v1":
        legacy(a)
    move("store_to_a_sibling_control_plane").apply(a, b)
    Vault.objects.create(control_plane=a.sibling_cp, prefix="stolen", config_store=a.store)
    _, dp_token = tokens.data_plane_token_create(actor=a.admin, control_plane=a.sibling_cp, name="dp")
    response = client.post("/api/us/v1/vault/resolve", {"references": [f"{{vault://stolen/{a.secret.key}}}"]},
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {dp_token}")
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "integrity"
    assert_no_marker(response.content.decode(), a)
    event = scope_events(a.org).get()
    assert event.details["differences"] == ["scope_ref"]


def test_secret_status_page_of_a_store_moved_to_a_sibling_control_plane_shows_integrity(tenants, login):
    a, b = tenants
    move("store_to_a_sibling_control_plane").apply(a, b)
    url = reverse("vault_secret_status", kwargs={"pk": a.sibling_cp.pk, "store_pk": a.store.pk, "secret_pk": a.secret.pk})
    vault_admin = factories.make_role_user(a.org, "vault_admin", a.sibling_cp)
    response = login(vault_admin).get(url)
    assert response.status_code == 200
    assert "integrity" in response.content.decode()
    assert_no_marker(response.content.decode(), a)


def test_secret_status_page_of_a_store_moved_to_another_org_shows_integrity(tenants, login):
    a, b = tenants
    type(a.store).objects.filter(pk=a.store.pk).update(control_plane=b.cp)
    url = reverse("vault_secret_status", kwargs={"pk": b.cp.pk, "store_pk": a.store.pk, "secret_pk": a.secret.pk})
    response = login(b.admin).get(url)
    assert response.status_code == 200
    assert "integrity" in response.content.decode()
    assert_no_marker(response.content.decode(), a)


def test_a_page_of_moved_rows_writes_one_event_per_organization_not_one_per_row(tenants):
    a, b = tenants
    RequestLog.objects.bulk_create([
        RequestLog(session=a.session, trace_id=a.trace.trace_id, time=a.log.time, level="info", message=f"line {n}")
        for n in range(60)
    ])
    ControlPlane.objects.filter(pk=a.cp.pk).update(organization=b.org)
    page = list(RequestLog.objects.filter(session=a.session))
    assert len(page) == 61
    results = keyring.reveal_many(log.message for log in page)
    assert {r.error.code for r in results} == {ErrorCode.INTEGRITY}
    assert sorted(e.organization.name for e in scope_events()) == ["Acme", "Globex"]
    assert scope_events().get(organization=b.org).details["values_refused"] == 61
    keyring.reveal_many(log.message for log in RequestLog.objects.filter(session=a.session))  # the next page view
    assert scope_events().count() == 2
    reload(a.capture).body.reveal_or_error()  # another data key (payloads): its own event
    assert scope_events().count() == 4


def test_the_scope_check_costs_no_query_per_row(tenants):
    """Rows read without select_related: their scopes are loaded for the whole batch, not row by row."""
    a, _ = tenants
    RequestLog.objects.bulk_create([
        RequestLog(session=a.session, trace_id="", time=a.log.time, level="info", message=f"line {n}")
        for n in range(30)
    ])
    keyring.reveal_many([reload(a.log).message])  # warm the DEK

    def queries_for(count: int) -> int:
        logs = list(RequestLog.objects.order_by("id")[:count])
        with CaptureQueriesContext(connection) as captured:
            results = keyring.reveal_many(log.message for log in logs)
        assert all(result.ok for result in results)
        return len(captured)

    assert queries_for(3) == queries_for(31) <= 2
