"""Which key protects a control plane's vault (Konnect: the CMEK only if linked before the control plane was
created), and "Protect with CMEK": re-wrapping an older control plane's vault DEKs without changing any secret."""

import pytest
from django.urls import reverse

from devtools import local_kms
from encryption_keys import keyring
from encryption_keys.envelope import EnvelopeError
from encryption_keys.models import DataKey
from konnect_admin import services as platform
from konnect_admin.models import AuditEvent
from tests import factories
from tests.vault.conftest import make_secrets
from vault import services
from vault.models import ProtectionJob, Secret, VaultProtection
from vault.protection import ProtectionRefused, protection_summary, vault_protect_with_cmek

pytestmark = pytest.mark.django_db
VALUES = {"stripe": "sk_live_abc", "db": "p@ss w0rd", "unicode": "秘密-🔑"}


def fill(control_plane, actor, name="store"):
    store = services.config_store_create(actor=actor, control_plane=control_plane, name=name)
    make_secrets(store, actor, **VALUES)
    return store


def plaintexts(control_plane):
    secrets = Secret.objects.filter(store__control_plane=control_plane).order_by("store__name", "key")
    return [(s.store.name, s.key, s.value.reveal()) for s in secrets]


def vault_arns(control_plane):
    return set(DataKey.objects.filter(scope_ref__in=[s.scope_ref for s in control_plane.config_stores.all()])
               .values_list("wrapping_key_ref", flat=True))


def test_control_plane_created_after_linking_is_under_the_cmek(org, org_admin, link_cmek, cmek, platform_keys):
    link_cmek(org)
    control_plane = platform.control_plane_create(organization=org, actor=org_admin, name="new-cp", region="us")
    assert VaultProtection.objects.get(control_plane=control_plane).under_cmek is True
    fill(control_plane, org_admin)
    assert vault_arns(control_plane) == {cmek}
    assert protection_summary(control_plane).protected_by_cmek


def test_control_plane_created_before_linking_stays_under_the_platform_key(org, org_admin, link_cmek, cmek,
                                                                            platform_keys):
    control_plane = platform.control_plane_create(organization=org, actor=org_admin, name="old-cp", region="us")
    assert VaultProtection.objects.get(control_plane=control_plane).under_cmek is False
    link_cmek(org)
    fill(control_plane, org_admin)
    assert vault_arns(control_plane) == {platform_keys["us"]}
    # …while other scopes of the organization (a control plane created after the link) use the CMEK.
    newer = factories.make_control_plane(org, name="newer")
    fill(newer, org_admin)
    assert vault_arns(newer) == {cmek}
    summary = protection_summary(control_plane)
    assert summary.key_label == "Platform key" and summary.protecting_arn == platform_keys["us"]
    assert summary.can_migrate and summary.pending == 1


def test_a_cmek_in_another_region_does_not_count(org, org_admin, link_cmek, platform_keys):
    link_cmek(org, region="eu")
    control_plane = factories.make_control_plane(org, name="us-cp", region="us")
    assert VaultProtection.objects.get(control_plane=control_plane).under_cmek is False


def test_a_missing_decision_is_inferred_from_the_link_date(org, org_admin, link_cmek, cmek, control_plane):
    link_cmek(org)
    VaultProtection.objects.all().delete()
    assert VaultProtection.for_control_plane(control_plane).under_cmek is False  # created before the link
    later = factories.make_control_plane(org, name="later")
    VaultProtection.objects.filter(control_plane=later).delete()
    assert VaultProtection.for_control_plane(later).under_cmek is True


def test_without_a_platform_key_writes_fail_closed(org, org_admin, control_plane, link_cmek, settings):
    link_cmek(org)  # the CMEK exists, but this control plane is not under it: never fall through to it
    settings.PLATFORM_KMS_KEYS = {}
    store = services.config_store_create(actor=org_admin, control_plane=control_plane, name="s")
    with pytest.raises(EnvelopeError) as raised:
        services.secret_create(actor=org_admin, store=store, key="k", value="v")
    assert raised.value.code == "kms_unavailable"
    assert not Secret.objects.exists() and not DataKey.objects.exists()


def test_protect_with_cmek_rewraps_every_dek_and_keeps_every_plaintext(org, org_admin, control_plane, link_cmek,
                                                                        cmek, platform_keys, kms_calls):
    first, second = fill(control_plane, org_admin, "a"), fill(control_plane, org_admin, "b")
    before = plaintexts(control_plane)
    envelopes = {s.pk: s.value.envelope for s in Secret.objects.all()}
    link_cmek(org)
    assert vault_arns(control_plane) == {platform_keys["us"]}

    outcome = vault_protect_with_cmek(actor=org_admin, control_plane=control_plane)

    assert outcome.rewrapped == 2 and outcome.fallbacks == 0 and not outcome.already_protected
    assert vault_arns(control_plane) == {cmek}
    assert all(dek.rewrapped_at for dek in DataKey.objects.filter(scope_ref__in=[first.scope_ref, second.scope_ref]))
    assert kms_calls(operation="ReEncrypt", outcome="ok").count() == 2
    protection = VaultProtection.objects.get(control_plane=control_plane)
    assert protection.under_cmek and protection.migrated_by == org_admin and protection.migrated_at
    # Secrets are untouched (same envelopes) and decrypt, in a fresh process, through the CMEK.
    assert {s.pk: s.value.envelope for s in Secret.objects.all()} == envelopes
    keyring.reset_for_tests()
    assert plaintexts(control_plane) == before
    assert kms_calls(operation="Decrypt", key_ref=cmek, outcome="ok").count() == 2
    # New secrets go under the CMEK too.
    services.secret_create(actor=org_admin, store=first, key="new", value="fresh")
    assert vault_arns(control_plane) == {cmek}
    event = AuditEvent.objects.get(action="vault.protected_with_cmek")
    assert event.details["data_keys_rewrapped"] == 2 and event.details["key_ref"] == cmek


def test_protect_with_cmek_is_idempotent(org, org_admin, control_plane, link_cmek, kms_calls):
    fill(control_plane, org_admin)
    link_cmek(org)
    vault_protect_with_cmek(actor=org_admin, control_plane=control_plane)
    calls = kms_calls().count()
    again = vault_protect_with_cmek(actor=org_admin, control_plane=control_plane)
    assert again.already_protected and again.rewrapped == 0
    assert kms_calls().count() == calls
    assert AuditEvent.objects.filter(action="vault.protected_with_cmek").count() == 1


def test_refused_reencrypt_falls_back_to_decrypt_and_encrypt(org, org_admin, control_plane, link_cmek, cmek,
                                                             kms_calls):
    fill(control_plane, org_admin)
    before = plaintexts(control_plane)
    link_cmek(org)
    local_kms.put_key_policy(cmek, {"Version": "2012-10-17", "Statement": [
        {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "NoReEncrypt", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:ReEncrypt*",
         "Resource": "*"},
    ]})
    outcome = vault_protect_with_cmek(actor=org_admin, control_plane=control_plane)
    assert outcome.rewrapped == 1 and outcome.fallbacks == 1
    assert kms_calls(operation="ReEncrypt", outcome="key_access_denied").count() == 1
    assert kms_calls(operation="Encrypt", key_ref=cmek, outcome="ok").count() == 1
    assert vault_arns(control_plane) == {cmek}
    keyring.reset_for_tests()
    assert plaintexts(control_plane) == before


def test_a_disabled_cmek_stops_the_migration_and_a_rerun_finishes_it(org, org_admin, control_plane, link_cmek,
                                                                      cmek, platform_keys):
    fill(control_plane, org_admin)
    before = plaintexts(control_plane)
    link_cmek(org)
    local_kms.disable_key(cmek)
    with pytest.raises(EnvelopeError) as raised:
        vault_protect_with_cmek(actor=org_admin, control_plane=control_plane)
    assert raised.value.code == "key_disabled"
    assert VaultProtection.objects.get(control_plane=control_plane).under_cmek is False
    assert vault_arns(control_plane) == {platform_keys["us"]}
    assert AuditEvent.objects.filter(action="vault.cmek_protection_failed").exists()
    local_kms.enable_key(cmek)
    assert vault_protect_with_cmek(actor=org_admin, control_plane=control_plane).rewrapped == 1
    keyring.reset_for_tests()
    assert plaintexts(control_plane) == before


def test_protect_needs_a_linked_cmek_and_an_organization_admin(org, org_admin, control_plane, link_cmek):
    with pytest.raises(ProtectionRefused):
        vault_protect_with_cmek(actor=org_admin, control_plane=control_plane)
    link_cmek(org)
    from django.core.exceptions import PermissionDenied

    cp_admin = factories.make_role_user(org, "cp_admin", control_plane)
    with pytest.raises(PermissionDenied):
        vault_protect_with_cmek(actor=cp_admin, control_plane=control_plane)
    assert VaultProtection.objects.get(control_plane=control_plane).under_cmek is False


def test_protect_page_confirms_then_migrates(login, org, org_admin, control_plane, link_cmek, cmek):
    fill(control_plane, org_admin)
    client = login(org_admin)
    detail = client.get(reverse("control_plane_detail", args=[control_plane.pk])).content.decode()
    assert "Platform key" in detail and "Protect with CMEK" not in detail  # nothing to protect with yet
    link_cmek(org)
    detail = client.get(reverse("control_plane_detail", args=[control_plane.pk])).content.decode()
    assert "Protect with CMEK" in detail and "created before the organization" in detail
    url = reverse("vault_protect_with_cmek", args=[control_plane.pk])
    confirm = client.get(url).content.decode()
    assert cmek in confirm and "Secret values do not change" in confirm
    assert vault_arns(control_plane) != {cmek}  # a GET changes nothing
    response = client.post(url)
    job = ProtectionJob.objects.get()  # the test settings run the task where it is enqueued (immediate backend)
    assert response.status_code == 302 and response["Location"] == reverse("vault_protection_job",
                                                                            args=[control_plane.pk, job.pk])
    assert vault_arns(control_plane) == {cmek}
    outcome = client.get(response["Location"]).content.decode()
    assert "Vault protected with the CMEK: <strong>1</strong> data key re-wrapped" in outcome
    assert 'hx-trigger="every 1s"' not in outcome  # finished: the region no longer polls
    detail = client.get(reverse("control_plane_detail", args=[control_plane.pk])).content.decode()
    assert "Customer-managed key (CMEK)" in detail and "Protect with CMEK…" not in detail
    again = client.post(url)  # nothing left to do: no second job
    assert again.status_code == 302 and again["Location"] == reverse("control_plane_detail", args=[control_plane.pk])
    assert ProtectionJob.objects.count() == 1
    assert "already under the CMEK" in client.get(again["Location"]).content.decode()


def test_protect_page_shows_a_kms_error(login, org, org_admin, control_plane, link_cmek, cmek):
    fill(control_plane, org_admin)
    link_cmek(org)
    local_kms.disable_key(cmek)
    client = login(org_admin)
    response = client.post(reverse("vault_protect_with_cmek", args=[control_plane.pk]))
    job = ProtectionJob.objects.get()
    assert response.status_code == 302 and (job.state, job.error_code, job.rewrapped) == ("failed", "key_disabled", 0)
    page = client.get(response["Location"]).content.decode()
    assert "Stopped: Key disabled" in page and "<code>key_disabled</code>" in page and "Try again" in page
