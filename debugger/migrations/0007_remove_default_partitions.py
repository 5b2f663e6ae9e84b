"""On PostgreSQL, the default partitions 0006 made go: their rows move into day partitions (created for the
days they fall on), so retention can detach expired days concurrently (debugger/partitions.py says why).
On SQLite nothing changes. Reversing makes empty default partitions again.
"""

from django.db import migrations


def remove_defaults(apps, schema_editor):
    from debugger import partitions

    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table in partitions.PARTITIONED:
            partitions.remove_default(cursor, table)


def restore_defaults(apps, schema_editor):
    from debugger import partitions

    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table in partitions.PARTITIONED:
            if partitions.is_partitioned(table):
                cursor.execute(f'CREATE TABLE "{table}_default" PARTITION OF "{table}" DEFAULT')


class Migration(migrations.Migration):

    dependencies = [
        ("debugger", "0006_partition_payloads_logs_spans"),
    ]

    operations = [
        migrations.RunPython(remove_defaults, restore_defaults, elidable=False),
    ]
