"""Daily partitions of the Debugger's bulk tables on PostgreSQL, so retention drops tables instead of rows.

Payload captures, request logs and spans are partitioned by RANGE on `created_at` (when the row was stored,
the server's clock, so a data plane with a wrong clock cannot scatter rows), one partition per UTC day,
named `<table>_pYYYYMMDD`, plus `<table>_default` for strays (a day nobody created ahead). The scheduled
`ensure_debugger_partitions` task creates the next PARTITION_DAYS_AHEAD days every hour; a day whose rows
already sit in the default partition is created detached, filled from the default, then attached.

Keys. PostgreSQL requires the partition key in every primary key and unique constraint of a partitioned
table. Django keeps seeing `id` as the primary key (no CompositePrimaryKey: the admin, forms and
`Model.delete()` stay as they are, and no table has a foreign key to these rows); the database's primary
key is `(id, created_at)`, and the per-trace unique constraints gain `created_at`, so they hold within a
day: ingest deduplicates against stored rows before inserting, as it does on SQLite. `id` stays unique in
practice (UUID4; a sequence for spans, whose identity column PostgreSQL 15 does not allow on a
partitioned table). The conversion keeps constraint and index names, so Django's later migrations find them.

SQLite has no partitions: everything here is a no-op there and retention deletes rows (debugger/retention.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction

PARTITIONED = ("debugger_payloadcapture", "debugger_requestlog", "debugger_span")
KEY = "created_at"
DAY = timedelta(days=1)
_LOCK = 7_170_017  # pg_advisory_xact_lock key: one partition change at a time, whoever runs it


def enabled() -> bool:
    return connection.vendor == "postgresql"


def days_ahead() -> int:
    return max(1, int(getattr(settings, "DEBUGGER_PARTITION_DAYS_AHEAD", 7)))


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def _bound(day: date) -> str:
    return datetime.combine(day, time(), tzinfo=UTC).isoformat(sep=" ")


@dataclass(frozen=True, slots=True)
class Partition:
    table: str
    name: str
    day: date

    @property
    def lower(self) -> datetime:
        return datetime.combine(self.day, time(), tzinfo=UTC)

    @property
    def upper(self) -> datetime:
        return self.lower + DAY


def partitions(table: str) -> list[Partition]:
    """The day partitions of `table`, oldest first (not the default one)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT child.relname FROM pg_inherits JOIN pg_class parent ON parent.oid = inhparent "
            "JOIN pg_class child ON child.oid = inhrelid WHERE parent.relname = %s", [table])
        names = [row[0] for row in cursor.fetchall()]
    prefix = f"{table}_p"
    found = []
    for name in names:
        if name.startswith(prefix):
            found.append(Partition(table, name, datetime.strptime(name.removeprefix(prefix), "%Y%m%d").date()))
    return sorted(found, key=lambda partition: partition.day)


def is_partitioned(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_partitioned_table JOIN pg_class ON pg_class.oid = partrelid "
                       "WHERE relname = %s", [table])
        return cursor.fetchone() is not None


def ensure(*, today: date | None = None, ahead: int | None = None, start: date | None = None) -> list[str]:
    """Create the day partitions from `start` (default: today) to `ahead` days after today; returns those made."""
    if not enabled():
        return []
    today = today or datetime.now(UTC).date()
    ahead = days_ahead() if ahead is None else ahead
    first = start or today
    made = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK])
        for table in PARTITIONED:
            if not is_partitioned(table):
                continue
            existing = {partition.day for partition in partitions(table)}
            day = first
            while day <= today + timedelta(days=ahead):
                if day not in existing:
                    _create(cursor, table, day)
                    made.append(partition_name(table, day))
                day += DAY
    return made


def _create(cursor, table: str, day: date) -> None:
    name, default = partition_name(table, day), f"{table}_default"
    lower, upper = _bound(day), _bound(day + DAY)
    cursor.execute(f'SELECT 1 FROM "{default}" WHERE {KEY} >= %s AND {KEY} < %s LIMIT 1',  # noqa: S608
                   [lower, upper])
    if cursor.fetchone() is None:
        cursor.execute(f'CREATE TABLE "{name}" PARTITION OF "{table}" FOR VALUES FROM (%s) TO (%s)', [lower, upper])
        return
    # The default partition holds rows of this day: a new partition for it would overlap, so move them first.
    cursor.execute(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
    cursor.execute(f'WITH moved AS (DELETE FROM "{default}" WHERE {KEY} >= %s AND {KEY} < %s RETURNING *) '  # noqa: S608
                   f'INSERT INTO "{name}" SELECT * FROM moved', [lower, upper])
    cursor.execute(f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" FOR VALUES FROM (%s) TO (%s)', [lower, upper])


def drop_before(table: str, cutoff: datetime) -> tuple[int, int]:
    """Drop the day partitions of `table` that end at or before `cutoff`; returns (partitions, rows) dropped.

    The rows are the planner's count (`pg_class.reltuples`, kept by autovacuum's ANALYZE): counting them
    exactly would read every row, the cost the drop avoids. A partition never analyzed is counted."""
    if not enabled() or not is_partitioned(table):
        return 0, 0
    dropped = rows = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK])
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # a table with pending foreign-key checks cannot be dropped
        for partition in partitions(table):
            if partition.upper > cutoff:
                break
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [partition.name])
            estimate = cursor.fetchone()[0]
            if estimate < 0:
                cursor.execute(f'SELECT count(*) FROM "{partition.name}"')  # noqa: S608 - our partition's name
                estimate = cursor.fetchone()[0]
            rows += estimate
            cursor.execute(f'DROP TABLE "{partition.name}"')
            dropped += 1
    return dropped, rows


def delete_default_before(table: str, cutoff: datetime) -> int:
    """Delete the default partition's rows older than `cutoff` (strays of days that had no partition)."""
    if not enabled() or not is_partitioned(table):
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f'DELETE FROM "{table}_default" WHERE {KEY} < %s', [cutoff])  # noqa: S608
        return cursor.rowcount


# --- the conversion of existing tables (migration 0005) -----------------------------------------------------


def convert_table(cursor, table: str, *, today: date, ahead: int, fill: str | None = None) -> None:
    """Replace a plain table by a partitioned one with the same columns, names, rows and sequences.

    `fill` is an SQL expression giving created_at for the copied rows (columns of the old table as `old`),
    for tables whose created_at was added just before: their rows got the migration's time."""
    old = f"{table}__unpartitioned"
    cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
    constraints, indexes, identity = _constraints(cursor, old), _indexes(cursor, old), _identity_column(cursor, old)
    cursor.execute(f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS) PARTITION BY RANGE ({KEY})')
    cursor.execute(f'CREATE TABLE "{table}_default" PARTITION OF "{table}" DEFAULT')
    cursor.execute(f'SELECT min({fill or KEY})::date FROM "{old}" old')  # noqa: S608
    oldest = cursor.fetchone()[0]
    day = min(oldest or today, today)
    while day <= today + timedelta(days=ahead):
        cursor.execute(f'CREATE TABLE "{partition_name(table, day)}" PARTITION OF "{table}" '
                       f'FOR VALUES FROM (%s) TO (%s)', [_bound(day), _bound(day + DAY)])
        day += DAY
    highest = _copy(cursor, old, table, fill=fill, identity=identity)
    cursor.execute(f'DROP TABLE "{old}"')  # and its identity sequence, whose name the new one takes
    if identity:
        sequence = f"{table}_{identity}_seq"
        cursor.execute(f'CREATE SEQUENCE "{sequence}" AS bigint OWNED BY "{table}"."{identity}"')
        cursor.execute("SELECT setval(%s, %s, false)", [sequence, highest + 1])
        cursor.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{identity}" SET DEFAULT nextval(%s::regclass)',
                       [sequence])
    for name, kind, definition in constraints:
        if kind in "pu":
            definition = f"{definition[:definition.index('(')]}({_columns_of(definition)}, {KEY})"
        cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    _recreate_indexes(cursor, indexes, old, table)


def unconvert_table(cursor, table: str) -> None:
    """The reverse of `convert_table`: a plain table again, with the same rows, names and an identity `id`."""
    old = f"{table}__partitioned"
    cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{old}"')
    constraints, indexes = _constraints(cursor, old), _indexes(cursor, old)
    cursor.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                   "AND pg_get_serial_sequence(%s, attname) IS NOT NULL", [old, old])
    serial = cursor.fetchone()
    cursor.execute(f'CREATE TABLE "{table}" (LIKE "{old}" INCLUDING DEFAULTS)')
    if serial:
        cursor.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{serial[0]}" DROP DEFAULT')
    highest = _copy(cursor, old, table, identity=serial[0] if serial else None)
    cursor.execute(f'DROP TABLE "{old}" CASCADE')  # its partitions and its sequence
    if serial:
        cursor.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{serial[0]}" ADD GENERATED BY DEFAULT AS IDENTITY '
                       f'(RESTART {highest + 1})')
    for name, kind, definition in constraints:
        if kind in "pu":
            columns = [column for column in _columns_of(definition).split(", ") if column != KEY]
            definition = f"{definition[:definition.index('(')]}({', '.join(columns)})"
        cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
    _recreate_indexes(cursor, indexes, old, table)


def _copy(cursor, source: str, target: str, *, fill: str | None = None, identity: str | None = None) -> int:
    """Copy every row (created_at from `fill` when given); returns the highest `identity` value copied."""
    columns = _columns(cursor, source)
    selected = ", ".join(f"({fill})" if fill and column == KEY else f'old."{column}"' for column in columns)
    listed = ", ".join(f'"{column}"' for column in columns)
    cursor.execute(f'INSERT INTO "{target}" ({listed}) SELECT {selected} FROM "{source}" old')  # noqa: S608
    if not identity:
        return 0
    cursor.execute(f'SELECT coalesce(max("{identity}"), 0) FROM "{target}"')  # noqa: S608
    return cursor.fetchone()[0]


def _recreate_indexes(cursor, indexes, old: str, table: str) -> None:
    for _name, definition in indexes:
        definition = definition.replace("ON ONLY ", "ON ")
        cursor.execute(definition.replace(f"ON public.{old} ", f"ON public.{table} ")
                       .replace(f'ON public."{old}" ', f"ON public.{table} "))


def _constraints(cursor, table):
    cursor.execute("SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
                   "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f', 'c') ORDER BY contype DESC",
                   [table])
    return cursor.fetchall()


def _indexes(cursor, table):
    """Indexes that are not a constraint's (those come back with the constraints)."""
    cursor.execute("SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
                   "WHERE indrelid = %s::regclass AND NOT EXISTS "
                   "(SELECT 1 FROM pg_constraint WHERE conindid = indexrelid)", [table])
    return cursor.fetchall()


def _columns(cursor, table) -> list[str]:
    cursor.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                   "AND NOT attisdropped ORDER BY attnum", [table])
    return [row[0] for row in cursor.fetchall()]


def _identity_column(cursor, table) -> str | None:
    cursor.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attidentity <> ''",
                   [table])
    row = cursor.fetchone()
    return row[0] if row else None


def _columns_of(definition: str) -> str:
    """`UNIQUE (trace_id, kind)` → `trace_id, kind`."""
    return definition[definition.index("(") + 1:definition.rindex(")")]
