"""Secret values are write-only: after they are stored, no API response, page, admin view, audit row or log line
carries them. Only the data-plane resolve endpoint answers a value — and this test proves the grep would see it."""

import logging

import pytest
from django.db import connection
from django.urls import reverse

from encryption_keys import call_log
from encryption_keys.models import KmsCall
from konnect_admin.models import AuditEvent, User
from tests.vault.conftest import MARKER
from vault import services
from vault.models import Secret

pytestmark = pytest.mark.django_db


def test_no_response_page_admin_view_or_log_returns_a_secret_value(api, data_plane, login, client, org_admin,
                                                                   control_plane, caplog, settings):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django")  # Django's own default is INFO
    settings.DEBUG = True  # Django then logs every SQL statement with its parameters at DEBUG
    admin_api = api(org_admin)
    stores = f"/control-planes/{control_plane.pk}/config-stores"
    store_id = admin_api.post(stores, {"name": "marker-store"}).json()["id"]
    secrets = f"{stores}/{store_id}/secrets"
    assert admin_api.post(secrets, {"key": "marked", "value": MARKER}).status_code == 201
    assert admin_api.put(f"{secrets}/put-marked", {"value": MARKER}).status_code == 201
    assert admin_api.put(f"{secrets}/put-marked", {"value": MARKER + "-2"}).status_code == 200
    admin_api.post(secrets, {"key": "marked", "value": MARKER})  # duplicate key → 400
    admin_api.post(secrets, {"key": "k" * 600, "value": MARKER})  # invalid key → 400
    admin_api.post(secrets, {"key": "x", "value": MARKER + "y" * 5200})  # too long → 400
    for path in [stores, f"{stores}/{store_id}", secrets, f"{secrets}/marked", f"{secrets}/put-marked"]:
        assert admin_api.get(path).status_code == 200
    responses = list(admin_api.responses)

    services.vault_create(actor=org_admin, control_plane=control_plane, prefix="pay",
                          config_store=Secret.objects.get(key="marked").store)
    secret = Secret.objects.get(key="marked")
    store = secret.store
    browser = login(org_admin)
    pages = [
        reverse("control_plane_detail", args=[control_plane.pk]),
        reverse("vault_config_store_list", args=[control_plane.pk]),
        reverse("vault_secret_list", args=[control_plane.pk, store.pk]),
        reverse("vault_secret_status", args=[control_plane.pk, store.pk, secret.pk]),
        reverse("vault_secret_update", args=[control_plane.pk, store.pk, secret.pk]),
        reverse("vault_secret_delete", args=[control_plane.pk, store.pk, secret.pk]),
        reverse("vault_config_store_delete", args=[control_plane.pk, store.pk]),
        reverse("vault_protect_with_cmek", args=[control_plane.pk]),
    ]
    for url in pages:
        page = browser.get(url)
        assert page.status_code == 200, url
        responses.append(page)
    htmx_status = browser.get(pages[3], headers={"HX-Request": "true"})
    assert b"readable" in htmx_status.content
    responses.append(htmx_status)
    # A form that comes back with errors never re-renders the value it was given.
    for htmx in ({}, {"HX-Request": "true"}):
        bad = browser.post(reverse("vault_secret_create", args=[control_plane.pk, store.pk]),
                           {"key": "k" * 600, "value": MARKER}, headers=htmx)
        assert bad.status_code in (400, 422)
        responses.append(bad)
    update = browser.post(pages[4], {"value": MARKER + "z" * 5200})
    assert update.status_code == 400
    responses.append(update)

    User.objects.filter(pk=org_admin.pk).update(is_staff=True, is_superuser=True)
    for model in ("configstore", "secret", "vault", "vaultprotection", "secretresolution"):
        changelist = browser.get(reverse(f"admin:vault_{model}_changelist"))
        assert changelist.status_code == 200
        responses.append(changelist)
    change = browser.get(reverse("admin:vault_secret_change", args=[secret.pk]))
    assert change.status_code == 200 and b"marked" in change.content
    responses.append(change)

    # The resolve endpoint is the one place a value comes back: the grep below would catch it anywhere else.
    resolved = data_plane(control_plane).post("/vault/resolve", {"references": ["{vault://pay/marked}"]})
    assert MARKER in resolved.content.decode()
    assert resolved["Cache-Control"] == "no-store"

    leaks = [(r.request["PATH_INFO"], r.status_code) for r in responses if MARKER.encode() in r.content]
    assert leaks == []
    assert len(responses) >= 30
    assert any(r.name == "django.db.backends" for r in caplog.records), "SQL statements must have been captured"
    assert MARKER not in caplog.text
    call_log.flush()
    assert MARKER not in str(list(AuditEvent.objects.values_list("details", "target_label")))
    assert MARKER not in str(list(KmsCall.objects.values_list("encryption_context", flat=True)))


def test_the_column_holds_ciphertext_only(org_admin, store):
    services.secret_create(actor=org_admin, store=store, key="raw", value=MARKER)
    table = Secret._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT value FROM {table}")  # noqa: S608 - table name from the model
        [(raw,)] = cursor.fetchall()
    raw = bytes(raw)
    assert raw[0] == 2  # envelope v2
    assert MARKER.encode() not in raw
    assert str(Secret.objects.get(key="raw").value) == "[encrypted]"


def test_a_sealed_value_copied_to_another_secret_does_not_decrypt(org_admin, store):
    first = services.secret_create(actor=org_admin, store=store, key="a", value=MARKER)
    second = services.secret_create(actor=org_admin, store=store, key="b", value="other")
    Secret.objects.filter(pk=second.pk).update(value=Secret.objects.get(pk=first.pk).value)
    error = Secret.objects.get(pk=second.pk).value.reveal_or_error().error
    assert error is not None and error.code == "integrity"
