"""References, encryption scopes, the admin site and the demo step."""

import pytest
from django.urls import reverse

from encryption_keys.models import DataKey
from konnect_admin.models import User
from tests.vault.conftest import MARKER, make_secrets
from vault import services
from vault.models import Vault
from vault.references import InvalidReference, VaultReference, parse_reference


@pytest.mark.parametrize(("text", "expected"), [
    ("{vault://payments/stripe}", VaultReference("payments", "stripe")),
    ("{vault://pay-2/db/primary/password}", VaultReference("pay-2", "db/primary/password")),
    ("{vault://ab/" + "k" * 512 + "}", VaultReference("ab", "k" * 512)),
])
def test_parse_reference(text, expected):
    assert parse_reference(text) == expected
    assert str(expected) == text


@pytest.mark.parametrize("text", [
    "", "vault://payments/stripe", "{vault://payments}", "{vault://payments/}", "{vault:///stripe}",
    "{vault://Payments/stripe}", "{vault://-pay/stripe}", "{vault://pay-/stripe}", "{env://pay/stripe}",
    "{vault://pay/" + "k" * 513 + "}", "{vault://pay/a\nb}", "{vault://pay/stripe}x", "{vault://pay/{x}}",
])
def test_invalid_references(text):
    with pytest.raises(InvalidReference) as raised:
        parse_reference(text)
    assert raised.value.reason


@pytest.mark.django_db
def test_encryption_scope_is_one_dek_per_config_store(org, org_admin, control_plane, store, platform_keys):
    other = services.config_store_create(actor=org_admin, control_plane=control_plane, name="other")
    [first] = make_secrets(store, org_admin, a="1")
    make_secrets(other, org_admin, b="2")
    scope = first.encryption_scope()
    assert (scope.organization_id, scope.region, scope.purpose, scope.scope_ref) == (
        org.pk, "us", "vault.secret", f"{control_plane.pk}/{store.pk}")
    assert scope.wrapping_key_ref is None  # the read identity: no query for the write-time key choice
    assert first.encryption_wrapping_key() == platform_keys["us"]
    assert set(DataKey.objects.values_list("scope_ref", "purpose")) == {
        (f"{control_plane.pk}/{store.pk}", "vault.secret"), (f"{control_plane.pk}/{other.pk}", "vault.secret")}
    assert first.data_key_id == DataKey.objects.get(scope_ref=store.scope_ref).pk


@pytest.mark.django_db
def test_admin_site_shows_metadata_never_values(login, org_admin, store):
    [secret] = make_secrets(store, org_admin, stripe=MARKER)
    operator = User.objects.create_superuser(email="ops@konnect.test", password="x-very-long-password")
    client = login(operator)
    change = client.get(reverse("admin:vault_secret_change", args=[secret.pk])).content.decode()
    assert "stripe" in change and DataKey.objects.get().wrapping_key_ref in change
    assert MARKER not in change and "[encrypted]" not in change and 'name="value"' not in change
    assert client.get(reverse("admin:vault_secret_add")).status_code == 403
    listing = client.get(reverse("admin:vault_secret_changelist")).content.decode()
    assert "stripe" in listing and MARKER not in listing


@pytest.mark.django_db
def test_demo_step_builds_config_stores_and_vaults(kms_server):
    from devtools.demo import DEMO_STEPS, demo_build
    from devtools.demo.vault import vault_demo_step

    assert vault_demo_step in DEMO_STEPS
    lines = []
    demo = demo_build(log=lines.append)
    acme = demo.organizations["Acme"]
    vaults = {vault.control_plane.name: vault for vault in Vault.objects.filter(control_plane__organization=acme)}
    assert set(vaults) >= {"payments", "storefront"}
    for vault in vaults.values():
        secrets = list(vault.config_store.secrets.all())
        assert len(secrets) >= 2
        assert all(secret.value.reveal().startswith("demo-") for secret in secrets)
    assert any("{vault://payments-vault/<key>}" in line for line in lines)
