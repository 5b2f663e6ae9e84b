"""Tokens issued before tokens expired get one: now + the default lifetime of their kind (ACCESS_TOKEN_DEFAULT_DAYS,
DATA_PLANE_TOKEN_DEFAULT_DAYS). Nothing stops working at upgrade time; nothing keeps working for ever."""

from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone


def give_every_token_an_expiry(apps, schema_editor):
    now = timezone.now()
    for model, days in (("PersonalAccessToken", settings.ACCESS_TOKEN_DEFAULT_DAYS),
                        ("DataPlaneToken", settings.DATA_PLANE_TOKEN_DEFAULT_DAYS)):
        tokens = apps.get_model("konnect_admin", model).objects.filter(expires_at__isnull=True, revoked_at__isnull=True)
        tokens.update(expires_at=now + timedelta(days=days))


class Migration(migrations.Migration):
    dependencies = [("konnect_admin", "0002_tokens")]

    operations = [migrations.RunPython(give_every_token_an_expiry, migrations.RunPython.noop, elidable=True)]
