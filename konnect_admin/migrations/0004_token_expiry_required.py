"""Every token has an expiry, enforced by the database: what 0003 left without one (revoked tokens, and anything
written since by a path that forgot it) gets one first — a revoked token expires when it was revoked, a live one
after the default lifetime of its kind — then `expires_at` becomes NOT NULL."""

from datetime import timedelta

from django.conf import settings
from django.db import migrations, models
from django.db.models import F
from django.utils import timezone


def give_the_remaining_tokens_an_expiry(apps, schema_editor):
    now = timezone.now()
    for model, days in (("PersonalAccessToken", settings.ACCESS_TOKEN_DEFAULT_DAYS),
                        ("DataPlaneToken", settings.DATA_PLANE_TOKEN_DEFAULT_DAYS)):
        tokens = apps.get_model("konnect_admin", model).objects.filter(expires_at__isnull=True)
        tokens.filter(revoked_at__isnull=False).update(expires_at=F("revoked_at"))
        tokens.update(expires_at=now + timedelta(days=days))


class Migration(migrations.Migration):
    dependencies = [("konnect_admin", "0003_token_expiry_backfill")]

    operations = [
        migrations.RunPython(give_the_remaining_tokens_an_expiry, migrations.RunPython.noop),
        migrations.AlterField(model_name="personalaccesstoken", name="expires_at", field=models.DateTimeField()),
        migrations.AlterField(model_name="dataplanetoken", name="expires_at", field=models.DateTimeField()),
    ]
