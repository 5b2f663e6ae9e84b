"""A KMS key (any region of a multi-region key) is linked at most once in the installation.

A migration of its own: PostgreSQL refuses to add a constraint in the transaction that just filled the column.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("encryption_keys", "0005_key_identity")]

    operations = [
        migrations.AddConstraint(
            model_name="encryptionkey",
            constraint=models.UniqueConstraint(fields=("key_identity",), name="one_link_per_kms_key"),
        ),
    ]
