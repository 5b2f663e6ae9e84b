"""Role and tenant isolation on every vault endpoint: the API (personal access tokens) and the pages."""

import pytest
from django.urls import reverse

from konnect_admin import services as platform
from konnect_admin import tokens
from tests import factories
from vault import services
from vault.models import ConfigStore, Secret, Vault

pytestmark = pytest.mark.django_db

# role → (reads, writes): the status family each gets. 404: cannot see the control plane; 403: sees it, lacks the right.
ROLES = {
    "org_admin": ("ok", "ok"),
    "cp_admin_team": ("ok", "ok"),
    "cp_admin": ("ok", "ok"),
    "vault_admin": ("ok", "ok"),
    "org_admin_read_only": ("ok", 403),
    "cp_viewer": ("ok", 403),
    "cp_creator": ("ok", 403),
    "debug_session_creator": (403, 403),
    "member": (404, 404),
    "vault_admin_elsewhere": (404, 404),
    "other_org_admin": (404, 404),
}


def user_with(role, org, other_org, control_plane):
    if role == "vault_admin_elsewhere":
        return factories.make_role_user(org, "vault_admin", factories.make_control_plane(org, name="elsewhere"))
    if role == "other_org_admin":
        return factories.make_role_user(other_org, "org_admin")
    return factories.make_role_user(org, role, control_plane)


@pytest.fixture
def world(org, org_admin, control_plane):
    store = services.config_store_create(actor=org_admin, control_plane=control_plane, name="store")
    secret = services.secret_create(actor=org_admin, store=store, key="key", value="value")
    vault = services.vault_create(actor=org_admin, control_plane=control_plane, prefix="pay", config_store=store)
    return store, secret, vault


def expect(response, outcome, call=""):
    if outcome == "ok":
        assert response.status_code in (200, 201, 204, 302), (call, response.status_code, response.content[:300])
    else:
        assert response.status_code == outcome, (call, response.status_code, response.content[:300])


API_CALLS = [  # (method, path after …/config-stores, body, writes) — destructive calls last
    ("get", "", None, False),
    ("get", "/{store}", None, False),
    ("get", "/{store}/secrets", None, False),
    ("get", "/{store}/secrets/key", None, False),
    ("post", "", {"name": "new"}, True),
    ("put", "/{store}", {"name": "renamed"}, True),
    ("post", "/{store}/secrets", {"key": "new", "value": "v"}, True),
    ("put", "/{store}/secrets/key", {"value": "v2"}, True),
    ("delete", "/{store}/secrets/key", None, True),
    ("delete", "/{store}?force=true", None, True),
]


def assert_unchanged(store, secret, vault):
    assert ConfigStore.objects.get(pk=store.pk).name == "store"
    assert Secret.objects.get(pk=secret.pk).value.reveal() == "value"
    assert Vault.objects.get(pk=vault.pk).prefix == "pay"
    assert ConfigStore.objects.count() == 1 and Secret.objects.count() == 1 and Vault.objects.count() == 1


@pytest.mark.parametrize("role", ROLES)
def test_api_rights(api, org, other_org, control_plane, world, role):
    store, secret, vault = world
    client = api(user_with(role, org, other_org, control_plane))
    for method, path, body, writes in API_CALLS:
        url = f"/control-planes/{control_plane.pk}/config-stores" + path.format(store=store.pk)
        response = client.call(method, url, body)
        outcome = ROLES[role][1 if writes else 0]
        expect(response, outcome, f"{method} {path}")
        if outcome != "ok":
            assert response["Content-Type"] == "application/problem+json"
    if ROLES[role][1] != "ok":
        assert_unchanged(store, secret, vault)
    else:
        assert not ConfigStore.objects.filter(pk=store.pk).exists()  # the last call deleted it


def test_api_needs_a_valid_personal_access_token(client, control_plane, world, org_admin):
    url = f"/api/us/v2/control-planes/{control_plane.pk}/config-stores"
    assert client.get(url).status_code == 401
    assert client.get(url, HTTP_AUTHORIZATION="Bearer kpat_nope").status_code == 401
    token, text = tokens.personal_access_token_create(user=org_admin, organization=control_plane.organization,
                                                      name="t")
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {text}").status_code == 200
    tokens.personal_access_token_revoke(user=org_admin, token=token)
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {text}").status_code == 401
    _dp, dp_text = tokens.data_plane_token_create(actor=org_admin, control_plane=control_plane, name="dp")
    response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {dp_text}")
    assert response.status_code == 401  # a data-plane token is not a personal access token
    assert response["Content-Type"] == "application/problem+json"


def test_a_token_acts_in_its_own_organization_only(api, org, other_org, control_plane, world):
    # A member of both organizations, admin of the other one: a token for the other org sees nothing here.
    user = factories.make_role_user(other_org, "org_admin")
    platform.member_add(organization=org, user=user, actor=None)
    other_token = api(user, organization=other_org)
    assert other_token.get(f"/control-planes/{control_plane.pk}/config-stores").status_code == 404


def page_calls(control_plane, store, secret, vault):
    args = [control_plane.pk]
    store_args, secret_args, vault_args = [*args, store.pk], [*args, store.pk, secret.pk], [*args, vault.pk]
    return [  # (method, url, data, writes) — destructive calls last
        ("get", reverse("vault_config_store_list", args=args), None, False),
        ("get", reverse("vault_secret_list", args=store_args), None, False),
        ("get", reverse("vault_secret_status", args=secret_args), None, False),
        ("post", reverse("vault_config_store_create", args=args), {"name": "new"}, True),
        ("get", reverse("vault_config_store_rename", args=store_args), None, True),
        ("post", reverse("vault_config_store_rename", args=store_args), {"name": "renamed"}, True),
        ("get", reverse("vault_secret_create", args=store_args), None, True),
        ("post", reverse("vault_secret_create", args=store_args), {"key": "new", "value": "v"}, True),
        ("get", reverse("vault_secret_update", args=secret_args), None, True),
        ("post", reverse("vault_secret_update", args=secret_args), {"value": "v2"}, True),
        ("get", reverse("vault_entity_create", args=args), None, True),
        ("post", reverse("vault_entity_create", args=args), {"prefix": "new-vault", "config_store": store.pk}, True),
        ("get", reverse("vault_entity_update", args=vault_args), None, True),
        ("post", reverse("vault_entity_update", args=vault_args), {"prefix": "pay2", "config_store": store.pk}, True),
        ("get", reverse("vault_entity_delete", args=vault_args), None, True),
        ("post", reverse("vault_entity_delete", args=vault_args), {}, True),
        ("get", reverse("vault_secret_delete", args=secret_args), None, True),
        ("post", reverse("vault_secret_delete", args=secret_args), {}, True),
        ("get", reverse("vault_config_store_delete", args=store_args), None, True),
        ("post", reverse("vault_config_store_delete", args=store_args), {"force": "on"}, True),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_page_rights(login, org, other_org, control_plane, world, role):
    store, secret, vault = world
    client = login(user_with(role, org, other_org, control_plane))
    for method, url, data, writes in page_calls(control_plane, store, secret, vault):
        response = client.post(url, data) if method == "post" else client.get(url)
        expect(response, ROLES[role][1 if writes else 0], f"{method} {url}")
    if ROLES[role][1] != "ok":
        assert_unchanged(store, secret, vault)
    else:
        assert not ConfigStore.objects.filter(pk=store.pk).exists() and not Vault.objects.filter(pk=vault.pk).exists()


@pytest.mark.parametrize("role", ROLES)
def test_only_organization_admins_may_protect_with_cmek(login, org, other_org, control_plane, world, role):
    client = login(user_with(role, org, other_org, control_plane))
    url = reverse("vault_protect_with_cmek", args=[control_plane.pk])
    expected = {"org_admin": 200, "cp_admin_team": 403, "cp_admin": 403, "vault_admin": 403,
                "org_admin_read_only": 403, "cp_viewer": 403, "cp_creator": 403, "debug_session_creator": 403,
                "member": 404, "vault_admin_elsewhere": 404, "other_org_admin": 404}[role]
    assert client.get(url).status_code == expected
    assert client.post(url).status_code == (409 if expected == 200 else expected)  # 409: no CMEK linked


def test_pages_need_a_login(client, control_plane, world):
    store, secret, vault = world
    for method, url, data, _writes in page_calls(control_plane, store, secret, vault):
        response = getattr(client, method)(url, data) if method == "post" else client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_section_on_the_control_plane_page_follows_vault_view(login, org, control_plane, world):
    url = reverse("control_plane_detail", args=[control_plane.pk])
    viewer = login(factories.make_role_user(org, "cp_viewer", control_plane))
    assert b'id="vault"' in viewer.get(url).content
    debugger = login(factories.make_role_user(org, "debug_session_creator", control_plane))
    page = debugger.get(url)
    assert page.status_code == 200 and b'id="vault"' not in page.content
