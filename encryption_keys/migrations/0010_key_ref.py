"""Provider-neutral key references (issue 16): every `*_arn` column becomes `*_ref`, and a link records its provider.

Renames only — no row is rewritten, so every existing link, data key, re-wrap job, platform key reading and call
record stays readable as it was: an AWS key ARN is a key reference of the AWS provider, and every link made
before key providers is an AWS link (`provider` defaults to "aws").
"""

from django.db import migrations, models


def _rename_index(model_name: str, old_name: str, new_name: str) -> migrations.SeparateDatabaseAndState:
    """Give the index over a field about to be renamed the name Django generates for the new field name: only its
    name changes (ALTER INDEX … RENAME on PostgreSQL, no rebuild of a large table), before the column is renamed
    (the index follows its column)."""
    return migrations.SeparateDatabaseAndState(
        database_operations=[migrations.RenameIndex(model_name, new_name=new_name, old_name=old_name)])


def _renamed_index_state(model_name: str, old_name: str, index: models.Index) -> migrations.SeparateDatabaseAndState:
    """The migration state of that index: over the new field name (the database already has it)."""
    return migrations.SeparateDatabaseAndState(
        state_operations=[migrations.RemoveIndex(model_name, old_name), migrations.AddIndex(model_name, index)])


class Migration(migrations.Migration):
    dependencies = [("encryption_keys", "0009_platformkeyhealth")]

    operations = [
        migrations.RenameField("encryptionkey", "key_arn", "key_ref"),
        migrations.AddField(
            model_name="encryptionkey",
            name="provider",
            field=models.CharField(default="aws", editable=False, max_length=32),
        ),
        _rename_index("datakey", "encryption__wrappin_b83dfb_idx", "encryption__wrappin_d2bd4f_idx"),
        migrations.RenameField("datakey", "wrapping_key_arn", "wrapping_key_ref"),
        _renamed_index_state("datakey", "encryption__wrappin_b83dfb_idx",
                             models.Index(fields=["wrapping_key_ref"], name="encryption__wrappin_d2bd4f_idx")),
        migrations.RenameField("rewrapjob", "old_key_arn", "old_key_ref"),
        migrations.RenameField("rewrapjob", "new_key_arn", "new_key_ref"),
        migrations.RenameField("platformkeyhealth", "key_arn", "key_ref"),
        _rename_index("kmscall", "encryption__organiz_afd1e7_idx", "encryption__organiz_0f0aad_idx"),
        migrations.RenameField("kmscall", "key_arn", "key_ref"),
        _renamed_index_state("kmscall", "encryption__organiz_afd1e7_idx", models.Index(
            fields=["organization", "key_ref", "-created_at"], name="encryption__organiz_0f0aad_idx")),
        migrations.RenameField("kmscall", "aws_region", "location"),
        migrations.AlterField(
            model_name="kmscall",
            name="location",
            field=models.CharField(
                blank=True, max_length=255,
                help_text="Where the call was answered: an AWS region (after failover), a Transit host.",
            ),
        ),
    ]
