"""Existing data keys of debug sessions (payloads and logs) get the scope reference the models compute now:
`<control plane id>/<session id>` instead of `<session id>` (encryption_keys.keyring.control_plane_scope_ref,
frozen here as of this migration). Moving a session to a sibling control plane then changes its scope.

Only the reference changes: it is not part of the KMS encryption context (no KMS call) nor of the v1 AAD,
so v1 values keep opening. A data key whose session no longer exists, or belongs to another organization
than the key, is left as it is (it opens nothing either way). Blob keys (`blobs:…`) are not sessions'.
"""

import uuid

from django.db import migrations

PURPOSES = ("debugger.payload", "debugger.log")
BATCH = 500


def _legacy_refs(DataKey):
    """(organization id, scope_ref) of the data keys still named by a bare session id."""
    rows = (DataKey.objects.filter(purpose__in=PURPOSES).exclude(scope_ref__contains="/")
            .exclude(scope_ref__startswith="blobs:").values_list("organization_id", "scope_ref").distinct())
    refs = []
    for organization_id, scope_ref in rows:
        try:
            if str(uuid.UUID(scope_ref)) == scope_ref:
                refs.append((organization_id, scope_ref))
        except ValueError:
            continue
    return refs


def name_the_control_plane(apps, schema_editor):
    DataKey = apps.get_model("encryption_keys", "DataKey")
    DebugSession = apps.get_model("debugger", "DebugSession")
    refs = _legacy_refs(DataKey)
    for start in range(0, len(refs), BATCH):
        batch = refs[start:start + BATCH]
        owners = {
            str(pk): (control_plane_id, organization_id)
            for pk, control_plane_id, organization_id in DebugSession.objects.filter(
                pk__in=[uuid.UUID(ref) for _, ref in batch]
            ).values_list("pk", "control_plane_id", "control_plane__organization_id")
        }
        for organization_id, ref in batch:
            owner = owners.get(ref)
            if owner is None or owner[1] != organization_id:
                continue
            DataKey.objects.filter(organization_id=organization_id, purpose__in=PURPOSES, scope_ref=ref).update(
                scope_ref=f"{owner[0]}/{ref}"
            )


def name_the_session_only(apps, schema_editor):
    DataKey = apps.get_model("encryption_keys", "DataKey")
    for pk, scope_ref in DataKey.objects.filter(purpose__in=PURPOSES, scope_ref__contains="/").exclude(
        scope_ref__startswith="blobs:"
    ).values_list("pk", "scope_ref"):
        DataKey.objects.filter(pk=pk).update(scope_ref=scope_ref.rsplit("/", 1)[1])


class Migration(migrations.Migration):
    dependencies = [
        ("debugger", "0002_scrub_span_attributes"),
        ("encryption_keys", "0007_data_key_scope_ref_length"),
    ]

    operations = [migrations.RunPython(name_the_control_plane, name_the_session_only)]
