"""DataKey.scope_ref grows to 100 characters: a debug session's or config store's scope reference now names its
control plane too (`<control plane id>/<session or store id>`, 73 characters). The debugger and vault apps
rewrite their existing data keys' references in their own migrations."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("encryption_keys", "0006_one_link_per_kms_key")]

    operations = [
        migrations.AlterField(
            model_name="datakey",
            name="scope_ref",
            field=models.CharField(
                help_text="<control plane id>/<debug session or config store id>, or blobs:<control plane or org id>.",
                max_length=100,
            ),
        ),
    ]
