"""Upgrading a database that has links: key_identity is filled for each, and a key linked by two organizations
(the breach a key identity now prevents) stops the upgrade instead of silently picking an owner."""

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
