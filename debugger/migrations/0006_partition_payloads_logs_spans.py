"""On PostgreSQL, payload captures, request logs and spans become tables partitioned by day on created_at
(debugger/partitions.py has the design); on SQLite nothing changes.

Existing rows are copied into day partitions made for them: payloads keep their created_at; spans and logs,
whose created_at 0004 just added (every row got the migration's time), take their trace's created_at and
their session's start. Django's state does not change: it still sees `id` as each table's primary key.
Reversing makes plain tables again, rows kept.
"""

from datetime import UTC, datetime

from django.db import migrations

FILL = {
    "debugger_payloadcapture": None,
    "debugger_requestlog": "(SELECT coalesce(s.started_at, s.created_at) FROM debugger_debugsession s "
                           "WHERE s.id = old.session_id)",
    "debugger_span": "(SELECT t.created_at FROM debugger_trace t WHERE t.id = old.trace_id)",
}


def partition(apps, schema_editor):
    from debugger import partitions

    if schema_editor.connection.vendor != "postgresql":
        return
    today = datetime.now(UTC).date()
    with schema_editor.connection.cursor() as cursor:
        for table, fill in FILL.items():
            if not partitions.is_partitioned(table):
                partitions.convert_table(cursor, table, today=today, ahead=partitions.days_ahead(), fill=fill)


def unpartition(apps, schema_editor):
    from debugger import partitions

    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for table in FILL:
            if partitions.is_partitioned(table):
                partitions.unconvert_table(cursor, table)


class Migration(migrations.Migration):

    dependencies = [
        ("debugger", "0005_partition_keys_and_keyset_indexes"),
    ]

    operations = [
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
