"""Record which key protects the vault of control planes created before this app: as in Konnect, the CMEK only
if it was linked before the control plane was created."""

from django.db import migrations


def backfill(apps, schema_editor):
    ControlPlane = apps.get_model("konnect_admin", "ControlPlane")
    EncryptionKey = apps.get_model("encryption_keys", "EncryptionKey")
    VaultProtection = apps.get_model("vault", "VaultProtection")
    linked_at = {
        (key.organization_id, key.region): key.created_at for key in EncryptionKey.objects.all()
    }
    decided = set(VaultProtection.objects.values_list("control_plane_id", flat=True))
    VaultProtection.objects.bulk_create([
        VaultProtection(
            control_plane_id=control_plane.pk,
            under_cmek=(control_plane.organization_id, control_plane.region) in linked_at
            and linked_at[(control_plane.organization_id, control_plane.region)] < control_plane.created_at,
        )
        for control_plane in ControlPlane.objects.exclude(pk__in=decided)
    ])


class Migration(migrations.Migration):
    dependencies = [
        ("vault", "0001_config_stores_secrets_vaults"),
        ("encryption_keys", "0001_initial"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
