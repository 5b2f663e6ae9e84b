"""The whole CMEK lifecycle with an OpenBao / Vault Transit key, against a real OpenBao dev server: link with
the Transit checklist, write and read Debugger payloads and logs, vault secrets and sealed rows, disable the key
the ways a customer can (revoke the policy, raise min_decryption_version, soft-delete, delete) → typed error
cards, re-enable → readable, and replace Transit → Transit and AWS → Transit with nothing lost."""

# The Debugger's fixtures are imported below and requested by name: ruff reads that as a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from debugger.models import RequestLog
from devtools import local_kms
from encryption_keys import providers, services
from encryption_keys.lifecycle import replace_key
from encryption_keys.lifecycle.models import RewrapState
from encryption_keys.models import DataKey, EncryptionKey, KeyStatus
from encryption_keys.providers.transit import TransitProvider
from tests import factories
from tests.debugger.conftest import (  # noqa: F401 - the Debugger's fixtures: sessions and ingest through the API
    BODY_SECRET,
    LOG_SECRET,
    debug_session,
    dp_client,
    dp_token,
    fresh_reader,
    ingest,
    make_session,
)
from tests.openbao import link
from tests.testapp.models import SealedNote
from tests.vault.conftest import make_secrets
from vault import services as vault
from vault.models import Secret
from vault.protection import vault_protect_with_cmek

# Transactional: a key status observed on the data path is stored after the transaction ends, as in production.
pytestmark = pytest.mark.django_db(transaction=True)
NOTE = "transit-sealed-note-41"
VAULT_VALUE = "sk_live_transit_7a"


@pytest.fixture
def transit(openbao, settings, org):
    """`transit()` → a new Transit key whose policy the platform's token carries (every key made so far)."""
    made = []

    def _make(**key_options):
        key = link(openbao, settings, org, **key_options)
        made.append(key)
        key.configure(method="token", token=openbao.token(*(k.name for k in made)))
        providers.reset()  # the registry's instances read TRANSIT_SERVERS again
        return key

    yield _make
    providers.reset()


def link_transit(org, org_admin, key) -> EncryptionKey:
    linked = services.link_key(organization=org, region="us", key_ref=key.ref, name="Acme US key", actor=org_admin)
    assert linked.checklist.ok and linked.checklist.provider == "transit", linked.checklist.verdicts()
    return linked.key


def write_everything(org, org_admin, control_plane, ingest):
    """A sealed row, a vault secret and a Debugger trace (payloads and logs) of the organization. The control
    plane predates the link, so its vault starts under the platform key; "Protect with CMEK" re-wraps it
    (through the same lifecycle re-wrap as key replacement: decrypt with AWS, encrypt with Transit)."""
    note = SealedNote.objects.create(organization=org, text=NOTE)
    store = vault.config_store_create(actor=org_admin, control_plane=control_plane, name="payments")
    make_secrets(store, org_admin, stripe=VAULT_VALUE)
    vault_protect_with_cmek(actor=org_admin, control_plane=control_plane)
    trace_id = ingest(1)[0]
    return note, trace_id


def panel(client, session, trace_id) -> str:
    url = reverse("debug_payload_panel", args=[session.control_plane_id, session.pk, trace_id, "client_request"])
    response = client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 200
    return response.content.decode()


def card_code(html: str) -> str | None:
    marker = 'data-code="'
    return html.split(marker, 1)[1].split('"', 1)[0] if marker in html else None


def read_everything(client, session, note, trace_id) -> dict[str, str | None]:
    """What each kind of data reads as in a process that has never unwrapped its data keys: None when readable,
    else the error code."""
    fresh_reader()
    html = panel(client, session, trace_id)
    codes = {"payload": None if BODY_SECRET in html else card_code(html)}
    logs = [log.message.reveal_or_error() for log in RequestLog.objects.filter(trace_id=trace_id)]
    assert logs, "the ingest wrote request logs"
    log_codes = {None if log.ok else log.error.code.value for log in logs}
    assert len(log_codes) == 1, log_codes  # one data key: all readable or all refused alike
    codes["logs"] = log_codes.pop()
    if codes["logs"] is None:
        assert any(LOG_SECRET in str(log.value) for log in logs)
    secret = Secret.objects.get(key="stripe").value.reveal_or_error()
    codes["vault"] = None if secret.ok else secret.error.code.value
    sealed = SealedNote.objects.get(pk=note.pk).text.reveal_or_error()
    codes["note"] = None if sealed.ok else sealed.error.code.value
    return codes


def disable_by_revoking_the_policy(openbao, key):
    openbao.delete_policy(key.name)
    return lambda: openbao.write_policy(key.name, TransitProvider().access_statement(key.org, key_ref=key.ref).text)


def disable_by_min_decryption_version(openbao, key):
    openbao.root.secrets.transit.rotate_key(key.name)
    openbao.root.secrets.transit.update_key_configuration(key.name, min_decryption_version=2)
    return lambda: openbao.root.secrets.transit.update_key_configuration(key.name, min_decryption_version=1)


def disable_by_soft_delete(openbao, key):
    openbao.root.delete(f"transit/keys/{key.name}/soft-delete")
    return lambda: openbao.root.write(f"transit/keys/{key.name}/soft-delete-restore")


@pytest.mark.parametrize(("disable", "code", "status", "remedy_words"), [
    (disable_by_revoking_the_policy, "key_access_denied", KeyStatus.ACCESS_DENIED, "Transit policy"),
    (disable_by_min_decryption_version, "key_disabled", KeyStatus.DISABLED, "min_decryption_version"),
    (disable_by_soft_delete, "key_disabled", KeyStatus.DISABLED, "soft-delete-restore"),
])
def test_link_write_read_disable_reenable(openbao, transit, org, org_admin, control_plane, debug_session, ingest,
                                          login, disable, code, status, remedy_words):
    key = transit()
    linked = link_transit(org, org_admin, key)
    note, trace_id = write_everything(org, org_admin, control_plane, ingest)
    assert {dek.wrapping_key_ref for dek in DataKey.objects.filter(organization=org)} == {key.ref}
    assert all(bytes(dek.wrapped).startswith(b"vault:v1:") for dek in DataKey.objects.filter(organization=org))
    client = login(org_admin)
    assert set(read_everything(client, debug_session, note, trace_id).values()) == {None}

    enable_again = disable(openbao, key)
    codes = read_everything(client, debug_session, note, trace_id)
    assert set(codes.values()) == {code}, codes
    html = panel(client, debug_session, trace_id)
    assert card_code(html) == code and remedy_words in html and BODY_SECRET not in html
    linked.refresh_from_db()
    assert linked.status == status  # marked by the data path's first refused read
    services.check_key_health(key=linked, actor=org_admin)  # and the full check agrees (no flapping back)
    linked.refresh_from_db()
    assert linked.status == status, linked.last_error

    enable_again()
    services.check_key_health(key=linked, actor=org_admin)
    linked.refresh_from_db()
    assert linked.status in (KeyStatus.HEALTHY, KeyStatus.ROTATION_DISABLED)
    assert set(read_everything(client, debug_session, note, trace_id).values()) == {None}


def test_a_deleted_key_is_key_not_found_for_good(openbao, transit, org, org_admin, control_plane, debug_session,
                                                  ingest, login):
    key = transit()
    linked = link_transit(org, org_admin, key)
    note, trace_id = write_everything(org, org_admin, control_plane, ingest)
    openbao.root.secrets.transit.update_key_configuration(key.name, deletion_allowed=True)
    openbao.root.secrets.transit.delete_key(key.name)
    codes = read_everything(login(org_admin), debug_session, note, trace_id)
    assert set(codes.values()) == {"key_not_found"}, codes
    linked.refresh_from_db()
    assert linked.status == KeyStatus.NOT_FOUND


def test_replace_transit_by_another_transit_key_loses_nothing(openbao, transit, org, org_admin, control_plane,
                                                              debug_session, ingest, login):
    old, new = transit(), transit()
    link_transit(org, org_admin, old)
    note, trace_id = write_everything(org, org_admin, control_plane, ingest)
    job = replace_key(organization=org, region="us", new_key_ref=new.ref, actor=org_admin)
    job.refresh_from_db()
    assert job.state == RewrapState.COMPLETED
    assert {dek.wrapping_key_ref for dek in DataKey.objects.filter(organization=org)} == {new.ref}
    openbao.delete_policy(old.name)  # the old key is revoked: nothing needs it any more
    assert set(read_everything(login(org_admin), debug_session, note, trace_id).values()) == {None}
    SealedNote.objects.create(organization=org, scope_ref="after", text="after the switch")
    assert DataKey.objects.get(scope_ref="after").wrapping_key_ref == new.ref


def test_replace_aws_by_transit_loses_nothing(transit, org, org_admin, control_plane, debug_session, ingest, login,
                                              cmek):
    services.link_key(organization=org, region="us", key_ref=cmek, name="AWS key", actor=org_admin)
    note, trace_id = write_everything(org, org_admin, control_plane, ingest)
    assert {dek.wrapping_key_ref for dek in DataKey.objects.filter(organization=org)} == {cmek}
    key = transit()
    job = replace_key(organization=org, region="us", new_key_ref=key.ref, actor=org_admin)
    job.refresh_from_db()
    assert job.state == RewrapState.COMPLETED
    assert {dek.wrapping_key_ref for dek in DataKey.objects.filter(organization=org)} == {key.ref}
    local_kms.disable_key(cmek)
    try:
        assert set(read_everything(login(org_admin), debug_session, note, trace_id).values()) == {None}
    finally:
        local_kms.enable_key(cmek)
    assert EncryptionKey.objects.get(organization=org, region="us").key_ref == key.ref


def test_another_organization_cannot_link_a_linked_transit_key(transit, org, org_admin, other_org):
    key = transit()
    link_transit(org, org_admin, key)
    with pytest.raises(services.KeyInUse):
        services.link_key(organization=other_org, region="us", key_ref=key.ref.replace("transit+http", "TRANSIT+HTTP") + "/",
                          name="theirs", actor=factories.make_role_user(other_org, "org_admin"))


# --- the API: Kong's key_arn stays AWS's, key_ref is the extension field ----------------------------------------

def put_cmek(client, user, org, body):
    from konnect_admin import tokens

    _token, text = tokens.personal_access_token_create(user=user, organization=org, name="api")
    return client.put("/api/us/v0/cmeks/default", data=body, content_type="application/json",
                      HTTP_AUTHORIZATION=f"Bearer {text}")


def test_link_and_replace_a_transit_key_through_the_api(transit, client, org, org_admin, cmek):
    key = transit()
    response = put_cmek(client, org_admin, org, {"key_arn": "", "key_ref": key.ref, "name": "Bao"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["key_arn"], body["key_ref"], body["name"]) == ("", key.ref, "Bao")
    assert EncryptionKey.objects.get(organization=org).key_ref == key.ref

    conflicting = put_cmek(client, org_admin, org, {"key_arn": cmek, "key_ref": key.ref, "name": "Bao"})
    assert conflicting.status_code == 400
    assert conflicting.json()["invalid_parameters"][0]["field"] == "key_ref"

    refused = put_cmek(client, org_admin, org, {"key_arn": "", "key_ref": key.ref.replace(key.name, "nope"),
                                                 "name": "Bao"})
    assert refused.status_code == 400
    assert {p["field"] for p in refused.json()["invalid_parameters"]} == {"key_ref"}
    assert "Key found" in refused.json()["invalid_parameters"][0]["reason"]

    ssrf = put_cmek(client, org_admin, org, {"key_arn": "", "key_ref": "transit+https://169.254.169.254/transit/keys/k",
                                             "name": "Bao"})
    assert ssrf.status_code == 400 and "operator configured" in ssrf.json()["invalid_parameters"][0]["reason"]

    other = transit()
    replaced = put_cmek(client, org_admin, org, {"key_arn": "", "key_ref": other.ref, "name": "Bao 2"})
    assert replaced.status_code == 200, replaced.content
    assert replaced.json()["key_ref"] == other.ref

    aws = put_cmek(client, org_admin, org, {"key_arn": cmek, "name": "Back to AWS"})
    assert aws.status_code == 200, aws.content
    assert (aws.json()["key_arn"], aws.json()["key_ref"]) == (cmek, cmek)


# --- the pages ---------------------------------------------------------------------------------------------------

def test_link_a_transit_key_on_the_page_and_its_key_page(transit, login, org, org_admin):
    key = transit()
    client = login(org_admin)
    page = client.get(reverse("encryption_key_link")).content.decode()
    assert "Transit policy" in page and "AWS KMS" in page  # both providers' grants, before a key is chosen
    form = {"name": "Bao", "key_ref": f" {key.ref} ", "region": "us", "description": ""}
    response = client.post(reverse("encryption_key_link"), form)
    body = response.content.decode()  # a fresh Transit key warns (e.g. rotation): the page asks first
    assert response.status_code == 200 and "Link anyway?" in body and not EncryptionKey.objects.exists()
    confirmed = re.search(r'name="confirmed" value="([^"]+)"', body).group(1)
    response = client.post(reverse("encryption_key_link"), {**form, "confirmed": confirmed})
    linked = EncryptionKey.objects.get(organization=org)
    assert response.status_code == 201 and linked.key_ref == key.ref
    detail = client.get(reverse("encryption_key_detail", args=[linked.pk])).content.decode()
    assert f'path "transit/decrypt/{key.name}"' in detail.replace("&quot;", '"')  # the policy names this key
    assert "Key policy statements" not in detail  # and only Transit's
    assert "<dt>Derived</dt><dd>yes</dd>" in detail and "AWS regions" not in detail


# --- the scheduled sweep: one keys/<name> read per Transit key ---------------------------------------------------

def test_the_sweep_reads_transit_keys(openbao, transit, org, org_admin, kms_calls):
    from encryption_keys.sweep import sweep_key_health

    key = transit()
    linked = link_transit(org, org_admin, key)
    openbao.root.secrets.transit.rotate_key(key.name)
    openbao.root.secrets.transit.update_key_configuration(key.name, min_decryption_version=2)
    before = kms_calls(key_ref=key.ref).count()
    result = sweep_key_health()
    assert kms_calls(key_ref=key.ref).count() == before + 1  # one read, no data key round trip
    linked.refresh_from_db()
    assert linked.status == KeyStatus.DISABLED and "lower it back to 1" in linked.last_error
    assert linked.kms_metadata["oldest_wrapping_version"] == 1  # carried forward from the link
    assert result.changed >= 1

    openbao.root.secrets.transit.update_key_configuration(key.name, min_decryption_version=1)
    result = sweep_key_health()
    assert str(linked.pk) in result.recheck  # usable again: the full check (with its round trip) clears it
