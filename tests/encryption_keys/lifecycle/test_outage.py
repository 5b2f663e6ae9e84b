"""A KMS outage across the product: pages render metadata and kms_unavailable cards (never a 500), ingest
and secret writes answer 503 with Retry-After and store nothing, failures are negatively cached so the
outage does not multiply KMS traffic, and everything recovers without a restart when KMS returns."""

import json
import time
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse

from debugger import services as debugger_services
from encryption_keys import keyring, services
from konnect_admin import tokens
from tests import factories
from tests.debugger.conftest import BODY_SECRET, LOG_SECRET, trace_json
from vault import services as vault_services

pytestmark = pytest.mark.django_db
VAULT_SECRET = "sk_live_outage_marker_51c9"
STORED_MODELS = ["debugger.Trace", "debugger.Span", "debugger.PayloadCapture", "debugger.RequestLog",
                 "vault.ConfigStore", "vault.Secret", "encryption_keys.DataKey"]
OUTAGE_SECONDS = 3600  # how long the failures cached during an outage step are remembered (see remember_failures_for)


def row_counts() -> dict[str, int]:
    return {label: apps.get_model(label).objects.count() for label in STORED_MODELS}


@pytest.fixture
def world(org, org_admin, cmek, login):
    """The org's CMEK linked, a control plane with a debug session holding two traces, a config store with a
    secret; a browser session, a data-plane client and an API client."""
    services.link_key(organization=org, region="us", key_ref=cmek, name="Acme US key", actor=org_admin)
    control_plane = factories.make_control_plane(org, name="checkout")
    session = debugger_services.session_create(actor=org_admin, control_plane=control_plane, duration_seconds=600)
    _token, dp_token = tokens.data_plane_token_create(actor=org_admin, control_plane=control_plane, name="dp")
    data_plane = Client(HTTP_AUTHORIZATION=f"Bearer {dp_token}")
    traces = [trace_json(), trace_json()]
    assert post_traces(data_plane, session, traces).status_code == 202
    store = vault_services.config_store_create(actor=org_admin, control_plane=control_plane, name="payments")
    vault_services.secret_create(actor=org_admin, store=store, key="stripe", value=VAULT_SECRET)
    _pat, pat = tokens.personal_access_token_create(user=org_admin, organization=org, name="automation")
    cp, sid, trace_id = control_plane.pk, session.pk, traces[0]["trace_id"]
    return SimpleNamespace(
        session=session, store=store, data_plane=data_plane, browser=login(org_admin),
        api=Client(HTTP_AUTHORIZATION=f"Bearer {pat}"),
        secrets_api=f"/api/us/v2/control-planes/{cp}/config-stores/{store.pk}/secrets",
        pages={
            "traces": reverse("debug_session_detail", args=[cp, sid]),
            "trace": reverse("debug_trace_detail", args=[cp, sid, trace_id]),
            "panel": reverse("debug_payload_panel", args=[cp, sid, trace_id, "client_request"]),
            "logs": reverse("debug_session_logs", args=[cp, sid]),
            "secrets": reverse("vault_secret_list", args=[cp, store.pk]),
            "keys": reverse("encryption_key_list"),
        },
    )


def post_traces(client, session, traces):
    return client.post(f"/api/us/v1/debugger/sessions/{session.pk}/traces", {"traces": traces},
                       content_type="application/json")


def post_secret(world, key):
    return world.api.post(world.secrets_api, json.dumps({"key": key, "value": VAULT_SECRET}),
                          content_type="application/json")


def remember_failures_for(seconds: float) -> None:
    """This process's failure TTL. It is read at each lookup, so it applies to the failures cached already.

    The outage steps of these tests (pages, ingests, writes, each through KMS refusals) take longer than
    DATAKEY_FAILURE_TTL on a loaded machine: a failure cached by the first step expired before the last one,
    which called KMS again and was counted. So failures are held for the outage, and the configured TTL is
    back before KMS is: recovery is timed against the real one."""
    keyring.keyring().cache.failure_ttl = seconds


def until_recovered(what, works, *, expired_at: float) -> None:
    """Retry `works` until it does; an attempt that began once the outage's cached failures had expired
    (`expired_at`) must work. (Not "within N seconds of the restart": a loaded machine stretches that.)"""
    while True:
        attempt = time.monotonic()
        if works():
            return
        assert attempt < expired_at, f"{what} did not recover after KMS came back and its cached failures expired"
        time.sleep(0.2)


def test_kms_outage_degrades_refuses_and_recovers(world, local_kms, kms_calls, settings):
    before = row_counts()
    local_kms.stop()
    try:
        keyring.reset_for_tests()  # a worker whose cached keys are past the revocation bound
        remember_failures_for(OUTAGE_SECONDS)
        pages = {name: world.browser.get(url) for name, url in world.pages.items()}
        for name, response in pages.items():
            assert response.status_code == 200, name
            html = response.content.decode()
            assert BODY_SECRET not in html and LOG_SECRET not in html and VAULT_SECRET not in html, name
        assert 'data-code="kms_unavailable"' in pages["panel"].content.decode()
        assert "kms_unavailable" in pages["logs"].content.decode()
        assert "route-orders" in pages["traces"].content.decode()  # metadata still listed
        assert "kong.phase.access" in pages["trace"].content.decode()
        assert "stripe" in pages["secrets"].content.decode()

        calls_after_first_reads = kms_calls().count()
        for _ in range(5):  # readers keep coming: the cached failure answers them, not KMS
            assert world.browser.get(world.pages["panel"]).status_code == 200
            assert world.browser.get(world.pages["logs"]).status_code == 200
        assert kms_calls().count() == calls_after_first_reads

        ingests = [post_traces(world.data_plane, world.session, [trace_json()]) for _ in range(3)]
        writes = [post_secret(world, f"new-{index}") for index in range(3)]
        for response in ingests + writes:
            assert response.status_code == 503
            assert int(response["Retry-After"]) > 0
            assert response["Content-Type"] == "application/problem+json"
            assert response.json()["code"] == "kms_unavailable"
        assert row_counts() == before
        outage_calls = kms_calls().count()
    finally:
        remember_failures_for(settings.DATAKEY_FAILURE_TTL)
        local_kms.start()
    # Writes met the cached failure of their scope's DEK; only the config store's DEK (no page had read it)
    # was tried once, in both AWS regions of the geo.
    assert outage_calls - calls_after_first_reads <= 2

    # KMS is back: no restart, no manual step. Everything works again once the cached failures expire.
    recovered = {
        "payload page": lambda: BODY_SECRET in world.browser.get(world.pages["panel"]).content.decode(),
        "logs page": lambda: world.browser.get(world.pages["logs"]).content.decode().count(LOG_SECRET) == 2,
        "ingest": lambda: post_traces(world.data_plane, world.session, [trace_json()]).status_code == 202,
        "secret write": lambda: post_secret(world, "after-the-outage").status_code == 201,
    }
    back = time.monotonic()  # every failure the outage cached is older than this
    for what, works in recovered.items():
        until_recovered(what, works, expired_at=back + settings.DATAKEY_FAILURE_TTL)
    after = row_counts()
    assert after["debugger.Trace"] == before["debugger.Trace"] + 1
    assert after["vault.Secret"] == before["vault.Secret"] + 1


def test_writes_to_new_scopes_during_an_outage_do_not_multiply_kms_traffic(world, org_admin, local_kms, kms_calls,
                                                                           settings):
    """Every new debug session needs a fresh data key: while KMS is down, a failed GenerateDataKey is remembered
    for DATAKEY_FAILURE_TTL, so retries and other sessions fail fast instead of calling KMS again."""
    sessions = [debugger_services.session_create(actor=org_admin, control_plane=world.session.control_plane,
                                                 duration_seconds=600) for _ in range(4)]
    before = row_counts()
    remember_failures_for(OUTAGE_SECONDS)
    local_kms.stop()
    try:
        calls = kms_calls().count()
        answers = [post_traces(world.data_plane, session, [trace_json()]) for session in sessions for _ in range(2)]
        attempts = kms_calls().count() - calls
    finally:
        remember_failures_for(settings.DATAKEY_FAILURE_TTL)
        local_kms.start()
    assert {a.status_code for a in answers} == {503}
    assert row_counts() == before
    assert attempts <= 2  # one GenerateDataKey, tried in both AWS regions of the geo
    back = time.monotonic()

    def new_scope_write_works():
        return post_traces(world.data_plane, sessions[0], [trace_json()]).status_code == 202

    until_recovered("writes to new scopes", new_scope_write_works, expired_at=back + settings.DATAKEY_FAILURE_TTL)
