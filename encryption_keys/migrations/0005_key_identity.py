"""EncryptionKey.key_identity: which KMS key a link names, whatever region its ARN addresses.

Filled for existing links. Two organizations linking one key (or two siblings of one multi-region key) is the
breach the next migration's unique constraint forbids: this migration stops, naming the links, instead of
choosing which organization keeps the key — an operator decides (the customer who owns the key in AWS).
"""

from collections import defaultdict

from django.db import migrations, models

from encryption_keys.providers.aws.arns import key_identity  # every link was an AWS key then


def fill_key_identity(apps, schema_editor):
    EncryptionKey = apps.get_model("encryption_keys", "EncryptionKey")
    links = defaultdict(list)
    for pk, arn in EncryptionKey.objects.values_list("pk", "key_arn").iterator():
        links[key_identity(arn)].append(pk)
    shared = {identity: pks for identity, pks in links.items() if len(pks) > 1}
    if shared:
        listing = "; ".join(f"{identity}: links {', '.join(map(str, pks))}" for identity, pks in shared.items())
        raise RuntimeError(
            "One KMS key is linked more than once (a key belongs to one organization). Keep the link of the "
            "organization that owns the key in AWS, unlink the others (their Org Admin: Encryption Keys → Unlink, or "
            f"DELETE /cmeks/default), then migrate again. {listing}"
        )
    for identity, (pk,) in links.items():
        EncryptionKey.objects.filter(pk=pk).update(key_identity=identity)


class Migration(migrations.Migration):
    dependencies = [("encryption_keys", "0004_rewrap_jobs")]

    operations = [
        migrations.AddField(
            model_name="encryptionkey",
            name="key_identity",
            field=models.CharField(default="", editable=False, max_length=2048),
            preserve_default=False,
        ),
        migrations.RunPython(fill_key_identity, migrations.RunPython.noop),
    ]
