"""Traces keep the route and service names their spans carry, so the traces table need not search the spans on
every page. Stored traces get them from their spans' stored (already scrubbed) attributes, as the page read
them: the first span in (start, id) order naming one, the first attribute listed (debugger/attributes.py)."""

from collections import defaultdict

from django.db import migrations, models

BATCH = 500
ENTITIES = ("route", "service")


def fill_entity_names(apps, schema_editor):
    from debugger.attributes import NAME_ATTRIBUTES, entity_names

    Trace, Span = apps.get_model("debugger", "Trace"), apps.get_model("debugger", "Span")
    keys = [key for entity in ENTITIES for key in NAME_ATTRIBUTES[entity]]
    last_pk = 0
    while True:
        pks = list(Trace.objects.filter(pk__gt=last_pk).order_by("pk").values_list("pk", flat=True)[:BATCH])
        if not pks:
            return
        spans = defaultdict(list)
        for trace_pk, attributes in (Span.objects.filter(trace_id__in=pks, attributes__has_any_keys=keys)
                                     .order_by("trace_id", "start_ns", "pk").values_list("trace_id", "attributes")):
            spans[trace_pk].append(attributes)
        named = []
        for trace_pk, attributes in spans.items():
            names = entity_names(attributes, entities=ENTITIES)
            if names:
                named.append(Trace(pk=trace_pk, route_name=names.get("route", ""),
                                   service_name=names.get("service", "")))
        Trace.objects.bulk_update(named, ["route_name", "service_name"])
        last_pk = pks[-1]


class Migration(migrations.Migration):

    dependencies = [
        ("debugger", "0007_remove_default_partitions"),
    ]

    operations = [
        migrations.AddField(
            model_name="trace",
            name="route_name",
            field=models.CharField(blank=True, db_default="", default="", max_length=200),
        ),
        migrations.AddField(
            model_name="trace",
            name="service_name",
            field=models.CharField(blank=True, db_default="", default="", max_length=200),
        ),
        migrations.RunPython(fill_entity_names, migrations.RunPython.noop, elidable=True),
    ]
