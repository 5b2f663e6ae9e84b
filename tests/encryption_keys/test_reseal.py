"""`reseal`: legacy v1 values are upgraded to v2 in place, under the same data key, without a KMS call
per record; moved rows are refused, never re-sealed into their new scope."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from encryption_keys import keyring
from encryption_keys.envelope import ErrorCode
from encryption_keys.lifecycle import reseal
from encryption_keys.models import DataKey
from konnect_admin.models import AuditEvent, ControlPlane
from tests.sealed_rows import (
    encrypted_fields,
    raw_envelope,
    reload,
    seal_tenant,
    write_legacy_v1,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def legacy_tenants():
    """Two organizations whose every encrypted value was written by the previous code (v1)."""
    tenants = seal_tenant("Acme"), seal_tenant("Globex")
    for tenant in tenants:
        for row in tenant.rows():
            write_legacy_v1(row)
    return tenants


def every_value(tenants):
    for tenant in tenants:
        for row in tenant.rows():
            for field in encrypted_fields(row):
                yield tenant, row, field


def plaintexts(tenants):
    """Every value as it reads now (or its error code)."""
    read = {}
    for _, row, field in every_value(tenants):
        result = getattr(reload(row), field.name).reveal_or_error()
        read[row._meta.label_lower, row.pk, field.name] = result.value if result.ok else result.error.code
    return read


def versions(tenants) -> dict:
    return {(row._meta.label_lower, row.pk, field.name): raw_envelope(row, field)[0]
            for _, row, field in every_value(tenants)}


def headers(tenants) -> dict:
    return {(row._meta.label_lower, row.pk, field.name): raw_envelope(row, field)[1:17]
            for _, row, field in every_value(tenants)}


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("reseal", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_legacy_values_are_upgraded_read_back_and_no_v1_envelope_remains(legacy_tenants, kms_calls):
    tenants = legacy_tenants
    before = plaintexts(tenants)
    assert all(not isinstance(v, ErrorCode) for v in before.values())  # v1 values still read (legacy path)
    assert set(versions(tenants).values()) == {1}
    dek_headers = headers(tenants)

    keyring.reset_for_tests()  # a fresh process: nothing cached
    calls = kms_calls(operation="Decrypt").count()
    out, _ = run()  # dry run
    assert "testapp.sealednote.text: v1 2, v2 0; would upgrade 2" in out
    assert "vault.secret.value: v1 2, v2 0; would upgrade 2" in out
    assert "Dry run: nothing changed" in out
    assert set(versions(tenants).values()) == {1}
    assert kms_calls(operation="Decrypt").count() == calls  # a dry run reads headers and DataKey rows only

    out, err = run("--yes")
    assert "debugger.payloadcapture.body: v1 2, v2 0; upgraded 2" in out
    assert "rows" in err  # the progress bar
    distinct_deks = len({header for header in dek_headers.values()})
    assert kms_calls(operation="Decrypt").count() - calls == distinct_deks  # one Decrypt per DEK, not per record
    assert distinct_deks < len(dek_headers)

    assert set(versions(tenants).values()) == {2}
    assert headers(tenants) == dek_headers  # sealed again under the same data key: shredding stays exact
    assert plaintexts(tenants) == before
    assert not _v1_anywhere()
    for tenant in tenants:
        event = AuditEvent.objects.get(organization=tenant.org, action="encryption.resealed")
        assert event.details["values"] == 9 and event.details["upgraded"]["vault.secret.value"] == 1
        assert all(marker not in str(event.details) for marker in tenant.markers.values())

    out, _ = run("--yes")  # re-running: every value is v2 already
    assert "upgraded 0" in out and "v1 0" in out


def test_a_killed_run_resumes_and_finishes(legacy_tenants):
    tenants = legacy_tenants

    class Killed(Exception):
        pass

    def kill_after_first_batch(walked):
        raise Killed

    with pytest.raises(Killed):
        reseal.reseal_values(yes=True, batch_size=1, on_progress=kill_after_first_batch)
    first_batch = len(reseal.encrypted_models()[0].fields)  # one row of the first model, all its values
    done = versions(tenants)
    assert list(done.values()).count(2) == first_batch  # the first batch committed before the kill
    report = reseal.reseal_values(yes=True, batch_size=1)
    assert set(versions(tenants).values()) == {2}
    assert sum(c.upgraded for c in report.fields.values()) == len(done) - first_batch
    assert sum(c.v2 for c in report.fields.values()) == first_batch  # skipped, not sealed twice
    assert report.complete


def test_a_moved_row_is_refused_reported_and_never_resealed_into_its_new_scope(legacy_tenants):
    acme, globex = legacy_tenants
    ControlPlane.objects.filter(pk=acme.cp.pk).update(organization=globex.org)  # the row-move attack on v1 data
    moved = {(r._meta.label_lower, r.pk) for r in (acme.capture, acme.log, acme.secret)}

    out, _ = run()
    assert "vault.secret.value: v1 2, v2 0; would upgrade 1, scope_mismatch: 1" in out
    with pytest.raises(CommandError, match="5 v1 values were not upgraded .scope_mismatch: 5."):
        run("--yes")

    for _, row, field in every_value(legacy_tenants):
        version = raw_envelope(row, field)[0]
        assert version == (1 if (row._meta.label_lower, row.pk) in moved else 2)
        result = getattr(reload(row), field.name).reveal_or_error()
        assert result.ok == ((row._meta.label_lower, row.pk) not in moved)
        if not result.ok:
            assert result.error.code is ErrorCode.INTEGRITY
    events = AuditEvent.objects.filter(action="encryption.scope_mismatch")
    assert {e.organization_id for e in events} == {acme.org.pk, globex.org.pk}
    assert not DataKey.objects.filter(organization=globex.org, scope_ref__endswith=str(acme.session.pk)).exists()


def test_an_unreadable_value_stays_v1_and_is_counted(legacy_tenants):
    acme, _ = legacy_tenants
    DataKey.objects.filter(pk=reload(acme.note).text.data_key_id).update(shredded_at="2026-01-01T00:00:00Z")
    keyring.reset_for_tests()
    report = reseal.reseal_values(yes=True)
    counts = report.fields["testapp.sealednote.text"]
    assert (counts.upgraded, dict(counts.not_upgraded)) == (1, {"data_key_shredded": 1})
    assert raw_envelope(acme.note, encrypted_fields(acme.note)[0])[0] == 1
    assert not report.complete


def test_batch_size_must_be_positive():
    with pytest.raises(CommandError):
        run("--batch-size", "0")


def _v1_anywhere() -> bool:
    """A raw-SQL look at every encrypted column of every model: does any value start with 0x01?"""
    from django.db import connection

    from encryption_keys.lifecycle.records import encrypted_models

    with connection.cursor() as cursor:
        for entry in encrypted_models():
            for field in entry.fields:
                cursor.execute(f"SELECT {field.column} FROM {entry.model._meta.db_table} "  # noqa: S608 - _meta
                               f"WHERE {field.column} IS NOT NULL")
                if any(bytes(value)[0] == 1 for (value,) in cursor.fetchall()):
                    return True
    return False
