"""Vault pages: full pages and htmx fragments, form errors, confirmations, write-only value fields."""

import pytest
from django.urls import reverse

from devtools import local_kms
from encryption_keys import keyring
from encryption_keys.models import DataKey
from konnect_admin import services as platform
from konnect_admin.models import AuditEvent
from tests import factories
from tests.vault.conftest import MARKER, make_secrets
from vault import services
from vault.models import ConfigStore, Secret, Vault

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


@pytest.fixture
def admin_client(login, vault_admin):
    return login(vault_admin)


def test_config_stores_page_lists_stores_vaults_and_the_protecting_key(admin_client, org_admin, store, control_plane,
                                                                      platform_keys):
    make_secrets(store, org_admin, a="1", b="2")
    services.vault_create(actor=org_admin, control_plane=control_plane, prefix="pay", config_store=store,
                          description="payments vault")
    page = admin_client.get(reverse("vault_config_store_list", args=[control_plane.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "payments-secrets" in html and "payments vault" in html and "<code>pay</code>" in html
    assert platform_keys["us"] in html and "Platform key" in html
    assert "New config store" in html


def test_create_config_store_full_and_htmx(admin_client, control_plane):
    url = reverse("vault_config_store_create", args=[control_plane.pk])
    response = admin_client.post(url, {"name": "from-page"})
    store = ConfigStore.objects.get(name="from-page")
    assert response.status_code == 302
    assert response["Location"] == reverse("vault_secret_list", args=[control_plane.pk, store.pk])
    response = admin_client.post(url, {"name": "from-htmx"}, headers=HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("vault_secret_list",
                                              args=[control_plane.pk, ConfigStore.objects.get(name="from-htmx").pk])


def test_invalid_config_store_name_is_a_form_error(admin_client, control_plane):
    url = reverse("vault_config_store_create", args=[control_plane.pk])
    fragment = admin_client.post(url, {"name": "x" * 101}, headers=HTMX)
    assert fragment.status_code == 422
    assert b"at most 100 characters" in fragment.content and b"<html" not in fragment.content
    full = admin_client.post(url, {"name": ""})
    assert full.status_code == 400 and b"<html" in full.content
    assert not ConfigStore.objects.exists()


def test_rename_config_store(admin_client, store):
    url = reverse("vault_config_store_rename", args=[store.control_plane.pk, store.pk])
    form = admin_client.get(url)
    assert form.status_code == 200 and b'value="payments-secrets"' in form.content
    assert admin_client.post(url, {"name": "renamed"}).status_code == 302
    assert ConfigStore.objects.get(pk=store.pk).name == "renamed"
    bad = admin_client.post(url, {"name": "x" * 101}, headers=HTMX)
    assert bad.status_code == 422 and b"<html" not in bad.content


def test_delete_config_store_confirms_and_needs_force_when_it_has_secrets(admin_client, org_admin, store):
    make_secrets(store, org_admin, a="1", b="2")
    url = reverse("vault_config_store_delete", args=[store.control_plane.pk, store.pk])
    confirm = admin_client.get(url)
    assert confirm.status_code == 200 and b"2 secrets" in confirm.content and b'name="force"' in confirm.content
    refused = admin_client.post(url, {}, headers=HTMX)
    assert refused.status_code == 422 and b"force=true" in refused.content
    assert ConfigStore.objects.filter(pk=store.pk).exists()
    done = admin_client.post(url, {"force": "on"})
    assert done.status_code == 302
    assert not ConfigStore.objects.exists() and not Secret.objects.exists()
    assert DataKey.objects.get().shredded_at is not None


def test_delete_an_empty_config_store_without_force(admin_client, store):
    url = reverse("vault_config_store_delete", args=[store.control_plane.pk, store.pk])
    assert b'name="force"' not in admin_client.get(url).content
    response = admin_client.post(url, {}, headers=HTMX)
    assert response.status_code == 200 and response["HX-Redirect"]
    assert not ConfigStore.objects.exists()


def test_secrets_page_shows_keys_protecting_key_and_lazy_status(admin_client, org_admin, store, platform_keys):
    [secret] = make_secrets(store, org_admin, stripe=MARKER)
    url = reverse("vault_secret_list", args=[store.control_plane.pk, store.pk])
    page = admin_client.get(url)
    html = page.content.decode()
    assert page.status_code == 200
    assert "stripe" in html and platform_keys["us"] in html and MARKER not in html
    status_url = reverse("vault_secret_status", args=[store.control_plane.pk, store.pk, secret.pk])
    assert f'hx-get="{status_url}"' in html and f'href="{status_url}"' in html and 'hx-trigger="load"' in html
    assert "readable" not in html  # the status is loaded lazily, not computed with the page
    fragment = admin_client.get(status_url, headers=HTMX)
    assert fragment.content.decode().strip() == '<span class="badge readable">readable</span>'


def test_secret_key_filter_uses_keys_only(admin_client, org_admin, store):
    make_secrets(store, org_admin, **{"db-password": "needle", "api-key": "other"})
    url = reverse("vault_secret_list", args=[store.control_plane.pk, store.pk])
    fragment = admin_client.get(url, {"q": "db"}, headers=HTMX).content.decode()
    assert "db-password" in fragment and "api-key" not in fragment and "<html" not in fragment
    assert "db-password" not in admin_client.get(url, {"q": "needle"}).content.decode()  # values cannot be searched


def test_create_secret_page_never_prefills_the_value(admin_client, store):
    url = reverse("vault_secret_create", args=[store.control_plane.pk, store.pk])
    form = admin_client.get(url).content.decode()
    assert 'type="password"' in form and 'autocomplete="off"' in form
    bad = admin_client.post(url, {"key": "", "value": MARKER}, headers=HTMX)
    assert bad.status_code == 422 and MARKER not in bad.content.decode()
    response = admin_client.post(url, {"key": "stripe", "value": "  spaced value  "})
    assert response.status_code == 302
    assert Secret.objects.get(key="stripe").value.reveal() == "  spaced value  "  # not stripped
    duplicate = admin_client.post(url, {"key": "stripe", "value": MARKER}, headers=HTMX)
    assert duplicate.status_code == 422 and b"already exists" in duplicate.content
    assert MARKER not in duplicate.content.decode()
    event = AuditEvent.objects.get(action="vault.secret.created")
    assert event.details["key"] == "stripe" and "spaced" not in str(event.details)


def test_update_secret_replaces_the_value(admin_client, org_admin, store):
    [secret] = make_secrets(store, org_admin, stripe=MARKER)
    url = reverse("vault_secret_update", args=[store.control_plane.pk, store.pk, secret.pk])
    form = admin_client.get(url).content.decode()
    assert MARKER not in form and 'type="password"' in form and "cannot be shown" in form
    response = admin_client.post(url, {"value": "replaced"}, headers=HTMX)
    assert response.status_code == 200 and response["HX-Redirect"]
    assert Secret.objects.get(pk=secret.pk).value.reveal() == "replaced"
    empty = admin_client.post(url, {"value": ""})
    assert empty.status_code == 400
    assert Secret.objects.get(pk=secret.pk).value.reveal() == "replaced"


def test_secret_write_without_a_data_key_stores_nothing_and_says_so(admin_client, store, local_kms):
    url = reverse("vault_secret_create", args=[store.control_plane.pk, store.pk])
    local_kms.stop()
    try:
        response = admin_client.post(url, {"key": "k", "value": MARKER}, headers=HTMX)
    finally:
        local_kms.start()
    assert response.status_code == 503 and response["Retry-After"]
    assert b"Nothing was saved" in response.content and MARKER.encode() not in response.content
    assert not Secret.objects.exists()


def test_delete_secret_with_confirmation(admin_client, org_admin, store):
    [secret] = make_secrets(store, org_admin, stripe="x")
    url = reverse("vault_secret_delete", args=[store.control_plane.pk, store.pk, secret.pk])
    confirm = admin_client.get(url)
    assert confirm.status_code == 200 and b"Delete secret" in confirm.content
    assert Secret.objects.exists()
    assert admin_client.post(url).status_code == 302
    assert not Secret.objects.exists()


def test_vault_entity_create_edit_delete(admin_client, org_admin, store, control_plane):
    create = reverse("vault_entity_create", args=[control_plane.pk])
    assert admin_client.get(create).status_code == 200
    bad = admin_client.post(create, {"prefix": "Bad Prefix", "config_store": store.pk}, headers=HTMX)
    assert bad.status_code == 422 and b"lowercase" in bad.content
    reserved = admin_client.post(create, {"prefix": "env", "config_store": store.pk})
    assert reserved.status_code == 400 and b"bundled Kong vault" in reserved.content
    assert admin_client.post(create, {"prefix": "pay", "config_store": store.pk}).status_code == 302
    vault = Vault.objects.get()
    assert vault.name == "konnect" and vault.config == {"config_store_id": str(store.pk)}
    duplicate = admin_client.post(create, {"prefix": "pay", "config_store": store.pk})
    assert duplicate.status_code == 400 and b"already exists" in duplicate.content

    edit = reverse("vault_entity_update", args=[control_plane.pk, vault.pk])
    assert b'value="pay"' in admin_client.get(edit).content
    assert admin_client.post(edit, {"prefix": "payments", "config_store": store.pk, "description": "d"}).status_code == 302
    assert Vault.objects.get().prefix == "payments"
    delete = reverse("vault_entity_delete", args=[control_plane.pk, vault.pk])
    assert admin_client.get(delete).status_code == 200
    assert admin_client.post(delete).status_code == 302
    assert not Vault.objects.exists()


def test_vault_entity_cannot_point_to_another_control_planes_store(admin_client, org, org_admin, control_plane):
    from tests import factories

    foreign = services.config_store_create(actor=org_admin, control_plane=factories.make_control_plane(org), name="x")
    response = admin_client.post(reverse("vault_entity_create", args=[control_plane.pk]),
                                 {"prefix": "pay", "config_store": foreign.pk})
    assert response.status_code == 400
    assert not Vault.objects.exists()


def test_viewer_sees_metadata_without_write_controls(login, org, org_admin, store):
    from tests import factories

    make_secrets(store, org_admin, stripe="x")
    viewer = login(factories.make_role_user(org, "cp_viewer", store.control_plane))
    html = viewer.get(reverse("vault_secret_list", args=[store.control_plane.pk, store.pk])).content.decode()
    assert "stripe" in html and "New secret" not in html and "Replace value" not in html
    html = viewer.get(reverse("vault_config_store_list", args=[store.control_plane.pk])).content.decode()
    assert "New config store" not in html and "Protect with CMEK" not in html


def test_key_filter_with_a_nul_character_is_not_an_error(admin_client, org_admin, store):
    make_secrets(store, org_admin, stripe="x")
    response = admin_client.get(reverse("vault_secret_list", args=[store.control_plane.pk, store.pk]), {"q": "st\x00"})
    assert response.status_code == 200 and b"stripe" in response.content


def _cmek_store(org, org_admin, link_cmek):
    """A config store of a control plane created after the CMEK was linked: its secrets are under the CMEK."""
    link_cmek(org)
    control_plane = platform.control_plane_create(organization=org, actor=org_admin, name="cmek-cp", region="us")
    return services.config_store_create(actor=org_admin, control_plane=control_plane, name="s")


def test_a_write_refused_by_a_disabled_key_is_409_with_the_card_and_no_retry_after(login, org, org_admin,
                                                                                    link_cmek, cmek):
    """The key must be re-enabled first: no Retry-After, and the shared card says so."""
    store = _cmek_store(org, org_admin, link_cmek)
    local_kms.disable_key(cmek)
    keyring.reset_for_tests()
    url = reverse("vault_secret_create", args=[store.control_plane.pk, store.pk])
    response = login(org_admin).post(url, {"key": "k", "value": MARKER}, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 409 and "Retry-After" not in response
    assert 'data-code="key_disabled"' in html and "Nothing was saved" in html and "aws kms enable-key" in html
    assert MARKER not in html and not Secret.objects.exists()


def test_the_status_page_shows_the_shared_card_with_advice_for_the_role(client, org, org_admin, link_cmek, cmek):
    store = _cmek_store(org, org_admin, link_cmek)
    vault_admin = factories.make_role_user(org, "vault_admin", store.control_plane)
    [secret] = make_secrets(store, org_admin, api_key=MARKER)
    local_kms.disable_key(cmek)
    keyring.reset_for_tests()
    url = reverse("vault_secret_status", args=[store.control_plane.pk, store.pk, secret.pk])
    client.force_login(vault_admin)
    page = client.get(url).content.decode()
    assert 'class="error-card key-error-card" role="alert" data-code="key_disabled"' in page
    assert "Ask an Organization Admin" in page and "aws kms enable-key" not in page and MARKER not in page
