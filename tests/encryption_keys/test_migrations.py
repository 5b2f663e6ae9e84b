"""Upgrading a database that has links: key_identity is filled for each, and a key linked by two organizations
(the breach a key identity now prevents) stops the upgrade instead of silently picking an owner."""

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("encryption_keys", "0004_rewrap_jobs")]
AFTER = [("encryption_keys", "0006_one_link_per_kms_key")]
MRK = "arn:aws:kms:{region}:123456789012:key/mrk-0123456789abcdef0123456789abcdef"
SINGLE = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.fixture
def old_schema():
    """The database before key identities; `links(*(org, region, arn))` writes links with the old model."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    executor.loader.build_graph()
    EncryptionKey = executor.loader.project_state(BEFORE).apps.get_model("encryption_keys", "EncryptionKey")

    def links(*rows):
        for organization, region, arn in rows:
            EncryptionKey.objects.create(organization_id=organization.pk, region=region, name="k", key_arn=arn)

    yield links
    EncryptionKey.objects.all().delete()  # a refused upgrade leaves the shared links in place
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def upgrade():
    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)


def test_existing_links_get_their_identity(old_schema):
    acme, globex = factories.make_organization("Acme"), factories.make_organization("Globex")
    old_schema((acme, "us", MRK.format(region="us-west-2")), (globex, "us", SINGLE))
    upgrade()
    with connection.cursor() as cursor:
        cursor.execute("SELECT key_identity FROM encryption_keys_encryptionkey ORDER BY key_identity")
        assert [row[0] for row in cursor.fetchall()] == [
            "aws:123456789012:1234abcd-12ab-34cd-56ef-1234567890ab",
            "aws:123456789012:mrk-0123456789abcdef0123456789abcdef",
        ]


def test_a_key_linked_by_two_organizations_stops_the_upgrade(old_schema):
    acme, globex = factories.make_organization("Acme"), factories.make_organization("Globex")
    old_schema((acme, "us", MRK.format(region="us-west-2")), (globex, "us", MRK.format(region="us-east-2")))
    with pytest.raises(RuntimeError, match="linked more than once"):
        upgrade()


# --- scope references name the control plane (debugger 0003, vault 0003) -----------------------------------

SCOPE_BEFORE = [("encryption_keys", "0006_one_link_per_kms_key"), ("debugger", "0002_scrub_span_attributes"),
                ("vault", "0002_backfill_vault_protection")]
# Through the scope migrations (debugger 0003, vault 0003) to the schema this release's models read: key_ref
# columns, the session's samples counter, the partition keys, the names traces keep.
SCOPE_AFTER = [("debugger", "0008_trace_entity_names"), ("vault", "0006_protectionjob_key_ref"),
               ("encryption_keys", "0010_key_ref")]


@pytest.fixture
def latest_schema_afterwards():
    """The test moves the schema back and to a middle state; later tests need every migration applied."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def scope_refs() -> dict:
    from encryption_keys.models import DataKey

    return dict(DataKey.objects.values_list("pk", "scope_ref"))


def test_existing_data_keys_name_their_control_plane_and_v1_values_keep_reading(kms_calls, latest_schema_afterwards):
    """A deployed database: v1 values under data keys named by the bare session / store id. After the upgrade
    the keys name their control plane, every value reads without a KMS call of the migration, keys of no
    existing session or store are left alone, and a store re-parented to a sibling control plane reads
    `integrity`."""
    from encryption_keys import call_log, keyring
    from encryption_keys.envelope import ErrorCode
    from encryption_keys.models import DataKey
    from tests.sealed_rows import MOVES, encrypted_fields, reload, seal_tenant, write_legacy_v1

    acme, globex = seal_tenant("Acme"), seal_tenant("Globex")
    for row in acme.rows():
        write_legacy_v1(row)  # as the previous release stored them (v2 values were never released)
    session_ref = f"{acme.cp.pk}/{acme.session.pk}"
    store_ref = f"{acme.cp.pk}/{acme.store.pk}"
    orphan = DataKey.objects.create(organization=acme.org, region="us", purpose="debugger.log",
                                    scope_ref="9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a", wrapped=b"w",
                                    wrapping_key_ref="arn:aws:kms:us-west-2:123456789012:key/x",
                                    encrypt_until=acme.session.ends_at)  # its session was deleted
    intruder = DataKey.objects.create(organization=globex.org, region="us", purpose="vault.secret",
                                      scope_ref=str(acme.store.pk), wrapped=b"w",
                                      wrapping_key_ref="arn:aws:kms:us-west-2:123456789012:key/x",
                                      encrypt_until=acme.session.ends_at)  # names another org's store
    current = scope_refs()
    assert session_ref in current.values() and store_ref in current.values()

    call_log.flush()  # the calls that wrote these rows are logged by the release that made them
    MigrationExecutor(connection).migrate(SCOPE_BEFORE)
    previous = scope_refs()
    assert {ref for ref in previous.values() if ref.endswith((str(acme.session.pk), str(acme.store.pk)))} == {
        str(acme.session.pk), str(acme.store.pk)}  # the previous release's references (reverse migration)
    calls = kms_calls().count()

    MigrationExecutor(connection).migrate(SCOPE_AFTER)
    keyring.reset_for_tests()  # the new release's processes start with empty caches

    assert kms_calls().count() == calls  # the reference is not in the KMS encryption context
    upgraded = scope_refs()
    assert upgraded == current  # every key as the models compute its scope now; nothing else touched
    assert upgraded[orphan.pk] == "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
    assert upgraded[intruder.pk] == str(acme.store.pk)
    assert {ref for ref in upgraded.values() if ref.startswith(("blobs:", "notes"))} == {
        f"blobs:{acme.org.pk}", f"blobs:{globex.org.pk}", "notes"}
    for row in acme.rows():
        fresh = reload(row)
        for field in encrypted_fields(fresh):
            revealed = getattr(fresh, field.name).reveal_or_error()
            assert revealed.ok, (field, revealed.error)
            marker = acme.markers[f"{fresh._meta.label_lower}.{field.name}"]
            assert marker in (revealed.value.decode() if isinstance(revealed.value, bytes) else str(revealed.value))

    next(move for move in MOVES if move.name == "store_to_a_sibling_control_plane").apply(acme, globex)
    assert reload(acme.secret).value.reveal_or_error().error.code is ErrorCode.INTEGRITY


# --- provider-neutral key references (encryption_keys 0010, vault 0006) --------------------------------------
REF_BEFORE = [("encryption_keys", "0009_platformkeyhealth"), ("vault", "0004_protectionjob")]


def test_rows_written_with_key_arns_stay_readable_as_key_refs(org, cmek, kms_calls, latest_schema_afterwards):
    """A database of the previous release — a link, a data key wrapped by the customer's key in the local KMS, a
    re-wrap job, a platform key reading, a call record and a vault protection job, all naming `*_arn` columns —
    is upgraded by renames alone: every row reads back under its `*_ref` name, the link is an AWS link, and the
    data key still unwraps through the provider seam (no key-service call made by the migration)."""
    from datetime import UTC, datetime, timedelta

    from encryption_keys import call_log, providers
    from encryption_keys.lifecycle.models import RewrapJob
    from encryption_keys.models import DataKey, EncryptionKey, KmsCall, PlatformKeyHealth
    from vault.models import ProtectionJob

    context = {"konnect:org": str(org.pk), "konnect:region": "us", "konnect:purpose": "vault.secret"}
    data_key_id = uuid.uuid4()
    plaintext, wrapped = providers.provider_for(cmek).generate_data_key(
        key_ref=cmek, context={**context, "konnect:datakey": str(data_key_id)}, organization_id=org.pk)
    control_plane = factories.make_control_plane(org)
    call_log.flush()  # logged by the release that made the call
    executor = MigrationExecutor(connection)
    executor.migrate(REF_BEFORE)
    old = executor.loader.project_state(REF_BEFORE).apps
    now = datetime.now(UTC)
    link = old.get_model("encryption_keys", "EncryptionKey").objects.create(
        organization_id=org.pk, region="us", name="Acme US", key_arn=cmek, key_identity="legacy")
    old.get_model("encryption_keys", "DataKey").objects.create(
        id=data_key_id, organization_id=org.pk, region="us", purpose="vault.secret", scope_ref="cp/store",
        wrapping_key_arn=cmek, wrapped=wrapped, encrypt_until=now + timedelta(days=1))
    old.get_model("encryption_keys", "RewrapJob").objects.create(
        organization_id=org.pk, region="us", old_key_arn=cmek, new_key_arn=cmek + "-next")
    old.get_model("encryption_keys", "PlatformKeyHealth").objects.create(
        region="eu", key_arn=cmek, status="healthy", last_checked_at=now, changed_at=now)
    old.get_model("encryption_keys", "KmsCall").objects.create(
        organization_id=org.pk, key_arn=cmek, aws_region="us-east-2", operation="Decrypt", outcome="ok",
        latency_ms=1.0, created_at=now)
    old.get_model("vault", "ProtectionJob").objects.create(control_plane_id=control_plane.pk, key_arn=cmek)
    calls = kms_calls().count()

    MigrationExecutor(connection).migrate([("encryption_keys", "0010_key_ref"), ("vault", "0006_protectionjob_key_ref")])

    assert kms_calls().count() == calls
    key = EncryptionKey.objects.get(pk=link.pk)
    assert (key.key_ref, key.provider) == (cmek, "aws")
    data_key = DataKey.objects.get(pk=data_key_id)
    assert data_key.wrapping_key_ref == cmek
    assert providers.provider_for(data_key.wrapping_key_ref).decrypt(
        key_ref=data_key.wrapping_key_ref, wrapped=bytes(data_key.wrapped), context=data_key.encryption_context(),
        organization_id=org.pk) == plaintext
    assert RewrapJob.objects.values_list("old_key_ref", "new_key_ref").get() == (cmek, cmek + "-next")
    assert PlatformKeyHealth.objects.values_list("key_ref", flat=True).get() == cmek
    assert KmsCall.objects.filter(key_ref=cmek, location="us-east-2").count() == 1
    assert ProtectionJob.objects.values_list("key_ref", flat=True).get() == cmek
