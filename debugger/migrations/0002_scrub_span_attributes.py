"""Span attributes stored before the case-insensitive denylist (e.g. `Http.Request.Header.Authorization`)
are scrubbed in place: dropped or query-redacted as debugger/attributes.py does on ingest today."""

from django.db import migrations

BATCH = 500


def scrub_stored_attributes(apps, schema_editor):
    from debugger.attributes import scrub

    Span = apps.get_model("debugger", "Span")
    last_pk = 0
    while True:
        batch = list(Span.objects.filter(pk__gt=last_pk).order_by("pk").only("pk", "attributes")[:BATCH])
        if not batch:
            return
        changed = []
        for span in batch:
            kept, _dropped = scrub(span.attributes or {})
            if kept != (span.attributes or {}):
                span.attributes = kept
                changed.append(span)
        Span.objects.bulk_update(changed, ["attributes"])
        last_pk = batch[-1].pk


class Migration(migrations.Migration):
    dependencies = [("debugger", "0001_initial")]

    operations = [migrations.RunPython(scrub_stored_attributes, migrations.RunPython.noop, elidable=True)]
