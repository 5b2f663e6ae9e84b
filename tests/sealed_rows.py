"""A tenant with a value in every encrypted field of the project, legacy (v1) values written as the
previous code did, and the database moves an attacker with SQL (or a careless operator) can make — to
another organization, and within one: a session or store re-parented to a sibling control plane.

Used by the row-move hardening tests and the reseal tests. Fields are enumerated from the app registry,
so a new encrypted field without a move below fails `tests/hardening/test_row_moves.py`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from debugger.models import Blob, DebugSession, PayloadCapture, RequestLog, SessionStatus, Trace
from encryption_keys import keyring
from encryption_keys.envelope import HEADER_SIZE, NONCE_SIZE, VERSION_V1, aad_v1, pack
from encryption_keys.fields import EncryptedField
from encryption_keys.lifecycle.records import encrypted_models
from konnect_admin.models import ControlPlane
from tests import factories, leaks
from tests.testapp.models import SealedNote
from vault.models import ConfigStore, Secret, Vault


def encrypted_field_labels() -> set[str]:
    """`app_label.model.field` of every encrypted field of every installed model."""
    return {f"{entry.model._meta.label_lower}.{field.name}" for entry in encrypted_models() for field in entry.fields}


@dataclass
class Tenant:
    name: str
    org: object
    admin: object
    cp: object
    session: object
    spare_session: object  # a second session of the same control plane (another DEK scope)
    trace: object
    spare_trace: object  # a trace without payloads, in the spare session
    capture: object
    log: object
    blob: object
    store: object
    spare_store: object  # a second config store of the same control plane (another DEK scope)
    secret: object
    vault: object
    note: object
    markers: dict  # field label -> the planted plaintext marker it holds
    sibling_cp: object  # another control plane of the same organization and region (other permissions)

    def rows(self) -> list:
        return [self.capture, self.log, self.blob, self.secret, self.note]


def seal_tenant(name: str) -> Tenant:
    """An organization with one row of every encrypted model, every encrypted field filled with a marker."""
    now = timezone.now()
    org = factories.make_organization(name)
    admin = factories.make_role_user(org, "org_admin")
    cp = factories.make_control_plane(org, name=f"{name.lower()}-payments")
    sibling_cp = factories.make_control_plane(org, name=f"{name.lower()}-checkout", region=cp.region)
    sessions = [
        DebugSession.objects.create(control_plane=cp, name=f"{name} {n}", status=SessionStatus.IN_PROGRESS,
                                    duration_seconds=600, started_at=now, ends_at=now + timedelta(minutes=10),
                                    retain_until=now + timedelta(days=15))
        for n in ("session", "spare")
    ]
    trace, spare_trace = (Trace.objects.create(session=session, trace_id=secrets.token_hex(16), start_time=now,
                                               method="POST", status_code=201) for session in sessions)
    m = {label: leaks.plant(f"{name.lower()}-{label}-{secrets.token_hex(4)}") for label in encrypted_field_labels()}
    capture = PayloadCapture.objects.create(
        trace=trace, kind="client_request", url=f"https://api.test/orders?key={m['debugger.payloadcapture.url']}",
        headers={"x-secret": m["debugger.payloadcapture.headers"]}, body=m["debugger.payloadcapture.body"].encode(),
        expires_at=now + timedelta(days=3))
    log = RequestLog.objects.create(session=sessions[0], trace_id=trace.trace_id, time=now, level="info",
                                    message=m["debugger.requestlog.message"])
    blob = Blob(organization=org, region="us", key=f"{name.lower()}-blob", content_type="application/octet-stream",
                expires_at=now + timedelta(days=1))
    blob.data = m["debugger.blob.data"].encode()
    blob.save(force_insert=True)
    store, spare_store = (ConfigStore.objects.create(control_plane=cp, name=f"{name} {n}") for n in ("store", "spare"))
    secret = Secret.objects.create(store=store, key=f"{name.lower()}-db-password", value=m["vault.secret.value"])
    vault = Vault.objects.create(control_plane=cp, prefix=f"{name.lower()}-vault", config_store=store)
    note = SealedNote.objects.create(organization=org, text=m["testapp.sealednote.text"],
                                     data={"secret": m["testapp.sealednote.data"]},
                                     blob=m["testapp.sealednote.blob"].encode())
    return Tenant(name, org, admin, cp, sessions[0], sessions[1], trace, spare_trace, capture, log, blob, store,
                  spare_store, secret, vault, note, m, sibling_cp=sibling_cp)


def reload(row):
    """The row as the database has it now (nothing cached on the instance)."""
    return type(row)._base_manager.get(pk=row.pk)


def encrypted_fields(row) -> list[EncryptedField]:
    return [f for f in type(row)._meta.concrete_fields if isinstance(f, EncryptedField)]


def raw_envelope(row, field: EncryptedField) -> bytes | None:
    table, column = type(row)._meta.db_table, field.column
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [_pk(row)])  # noqa: S608 - names from _meta
        value = cursor.fetchone()[0]
    return bytes(value) if value is not None else None


def write_raw_envelope(row, field: EncryptedField, envelope: bytes) -> None:
    """An UPDATE below the ORM, as someone with SQL access would write."""
    table, column = type(row)._meta.db_table, field.column
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [envelope, _pk(row)])  # noqa: S608


def write_legacy_v1(row) -> None:
    """Rewrite every encrypted value of `row` exactly as the previous code path stored it: sealed under the
    row's data key with the v1 AAD (`v1|app.model.field|pk`) and packed with version byte 0x01."""
    row = reload(row)
    for field in encrypted_fields(row):
        sealed = getattr(row, field.name)
        if sealed is None:
            continue
        scope = sealed.expected_scope()
        cipher = keyring.cipher_for(sealed.data_key_id, scope=scope)
        label = row._meta.label_lower
        plaintext = cipher.open_field(sealed.envelope, scope=scope, model_label=label, field=field.name, pk=row.pk)
        sealed_v1 = cipher.seal(plaintext, aad=aad_v1(model_label=label, field=field.name, pk=row.pk))
        legacy = pack(dek_id=cipher.dek_id, nonce=sealed_v1[HEADER_SIZE - NONCE_SIZE:HEADER_SIZE],
                      ciphertext=sealed_v1[HEADER_SIZE:], version=VERSION_V1)
        write_raw_envelope(row, field, legacy)


def _pk(row):
    return row.pk.hex if connection.vendor == "sqlite" else row.pk


# --- moves: one QuerySet.update each, as SQL access would do it --------------------------------------------


@dataclass(frozen=True)
class Move:
    name: str
    moved: Callable[[Tenant], list]  # the victim rows whose values the move affects
    apply: Callable[[Tenant, Tenant], None]  # (victim, other tenant)
    new_org: Callable[[Tenant, Tenant], object]  # the organization the moved rows belong to afterwards


def _update(model, pk, **values):
    assert model._base_manager.filter(pk=pk).update(**values) == 1


def _victim_org(a, b):
    return a.org


def _other_org(a, b):
    return b.org


MOVES = [
    Move("control_plane_to_another_org", lambda a: [a.capture, a.log, a.secret],
         lambda a, b: _update(ControlPlane, a.cp.pk, organization=b.org), _other_org),
    Move("session_to_another_orgs_control_plane", lambda a: [a.capture, a.log],
         lambda a, b: _update(DebugSession, a.session.pk, control_plane=b.cp), _other_org),
    # Same organization and region, another control plane: permissions (and data planes) are per control plane.
    Move("session_to_a_sibling_control_plane", lambda a: [a.capture, a.log],
         lambda a, b: _update(DebugSession, a.session.pk, control_plane=a.sibling_cp), _victim_org),
    Move("trace_to_another_session", lambda a: [a.capture],
         lambda a, b: _update(Trace, a.trace.pk, session=a.spare_session), _victim_org),
    Move("trace_to_another_orgs_session", lambda a: [a.capture],
         lambda a, b: _update(Trace, a.trace.pk, session=b.spare_session), _other_org),
    Move("capture_to_another_sessions_trace", lambda a: [a.capture],
         lambda a, b: _update(PayloadCapture, a.capture.pk, trace=a.spare_trace), _victim_org),
    Move("capture_to_another_orgs_trace", lambda a: [a.capture],
         lambda a, b: _update(PayloadCapture, a.capture.pk, trace=b.spare_trace), _other_org),
    Move("log_to_another_session", lambda a: [a.log],
         lambda a, b: _update(RequestLog, a.log.pk, session=a.spare_session), _victim_org),
    Move("log_to_another_orgs_session", lambda a: [a.log],
         lambda a, b: _update(RequestLog, a.log.pk, session=b.session), _other_org),
    Move("blob_to_another_org", lambda a: [a.blob],
         lambda a, b: _update(Blob, a.blob.pk, organization=b.org), _other_org),
    Move("blob_to_a_control_plane", lambda a: [a.blob],
         lambda a, b: _update(Blob, a.blob.pk, control_plane=a.cp), _victim_org),
    Move("blob_to_another_region", lambda a: [a.blob],
         lambda a, b: _update(Blob, a.blob.pk, region="eu"), _victim_org),
    Move("secret_to_another_orgs_store", lambda a: [a.secret],
         lambda a, b: _update(Secret, a.secret.pk, store=b.store), _other_org),
    Move("secret_to_a_sibling_store", lambda a: [a.secret],
         lambda a, b: _update(Secret, a.secret.pk, store=a.spare_store), _victim_org),
    Move("store_to_another_orgs_control_plane", lambda a: [a.secret],
         lambda a, b: _update(ConfigStore, a.store.pk, control_plane=b.cp), _other_org),
    Move("store_to_a_sibling_control_plane", lambda a: [a.secret],
         lambda a, b: _update(ConfigStore, a.store.pk, control_plane=a.sibling_cp), _victim_org),
    Move("note_to_another_org", lambda a: [a.note],
         lambda a, b: _update(SealedNote, a.note.pk, organization=b.org), _other_org),
    Move("note_to_another_scope", lambda a: [a.note],
         lambda a, b: _update(SealedNote, a.note.pk, scope_ref="elsewhere"), _victim_org),
    Move("note_to_another_region", lambda a: [a.note],
         lambda a, b: _update(SealedNote, a.note.pk, region="eu"), _victim_org),
]
