# When a key was linked (the Link key flow and the CMEK API set it).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("encryption_keys", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="encryptionkey",
            name="linked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
