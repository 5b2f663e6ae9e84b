"""ProtectionJob.key_arn → key_ref (issue 16: provider-neutral key references); a rename, rows stay as they are."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("vault", "0005_config_store_key_pattern"), ("encryption_keys", "0010_key_ref")]

    operations = [migrations.RenameField("protectionjob", "key_arn", "key_ref")]
