"""Daily partitions of the Debugger's bulk tables on PostgreSQL, so retention drops tables instead of rows.

Payload captures, request logs and spans are partitioned by RANGE on `created_at` (when the row was stored,
the server's clock, so a data plane with a wrong clock cannot scatter rows), one partition per UTC day,
named `<table>_pYYYYMMDD`. The scheduled `ensure_debugger_partitions` task creates the next
PARTITION_DAYS_AHEAD days every hour.

No default partition. PostgreSQL refuses `DETACH PARTITION … CONCURRENTLY` on a table that has one, and
without a concurrent detach retention holds the parent's ACCESS EXCLUSIVE lock while the expired days' files
are unlinked, stopping ingest. A default also did little: rows are stamped with the server's clock when
stored, so a stray is only ever a day the scheduler did not create ahead, and that is better fixed by
creating it. So ingest calls `ready()` before it writes: each process checks once a day that today's and
tomorrow's partitions exist (one catalog query) and creates them if the scheduler has been down for
PARTITION_DAYS_AHEAD days — ingest never fails for want of a partition, and costs nothing otherwise.
Migration 0007 moves the rows of the default partition that 0006 made into day partitions and drops it.

Retention (`drop_before`) detaches each expired day CONCURRENTLY — ingest into the parent is never blocked,
the detach waits for the transactions that could see the partition instead — then drops the detached
table, whose file unlinking blocks nobody. A detach interrupted half-way leaves the partition "detach
pending" (still listed, no longer routed to) and one interrupted before its drop leaves a plain table named
like a partition: the next run finalizes the first and drops both.

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

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction

PARTITIONED = ("debugger_payloadcapture", "debugger_requestlog", "debugger_span")
KEY = "created_at"
DAY = timedelta(days=1)
_CREATE_LOCK = 7_170_017  # pg_advisory_xact_lock key: one partition creation at a time, whoever runs it
# pg_advisory_lock key: one retention removal at a time. Not the creation's key: ingest may hold that one in its
# transaction (`ready`) while a concurrent detach waits for that very transaction to end.
_REMOVAL_LOCK = 7_170_018
_ready: set[tuple[str, date]] = set()  # (database, day) whose partitions this process has seen


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
    detach_pending: bool = False

    @property
    def lower(self) -> datetime:
        return datetime.combine(self.day, time(), tzinfo=UTC)

    @property
    def upper(self) -> datetime:
        return self.lower + DAY


def partitions(table: str) -> list[Partition]:
    """The day partitions of `table`, oldest first, including any whose detach was interrupted."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT child.relname, inhdetachpending FROM pg_inherits JOIN pg_class parent ON parent.oid = inhparent "
            "JOIN pg_class child ON child.oid = inhrelid WHERE parent.relname = %s", [table])
        return sorted(_named(table, cursor.fetchall()), key=lambda partition: partition.day)


def _named(table: str, rows) -> list[Partition]:
    prefix = f"{table}_p"
    return [Partition(table, name, datetime.strptime(name.removeprefix(prefix), "%Y%m%d").date(), pending)
            for name, pending in rows if name.startswith(prefix) and re.fullmatch(r"\d{8}", name.removeprefix(prefix))]


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
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CREATE_LOCK])
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


def ready(now: datetime | None = None) -> None:
    """Make sure the partitions a write stamped `now` or a little later goes to exist (today's, tomorrow's).

    Called by ingest before its transaction; checks the catalog once a day per process."""
    if not enabled():
        return
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    seen = (connection.settings_dict["NAME"], today)
    if seen in _ready:
        return
    names = [partition_name(table, day) for table in PARTITIONED for day in (today, today + DAY)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname = ANY(%s) AND relispartition", [names])
        if cursor.fetchone()[0] < len(names):
            ensure(today=today, ahead=1)
    _ready.add(seen)


def reset_for_tests() -> None:
    _ready.clear()


def _create(cursor, table: str, day: date) -> None:
    cursor.execute(f'CREATE TABLE "{partition_name(table, day)}" PARTITION OF "{table}" FOR VALUES FROM (%s) TO (%s)',
                   [_bound(day), _bound(day + DAY)])


def drop_before(table: str, cutoff: datetime) -> tuple[int, int]:
    """Remove the day partitions of `table` that end at or before `cutoff`; returns (partitions, rows) removed.

    Outside a transaction each goes by `DETACH PARTITION … CONCURRENTLY` then `DROP TABLE`, finishing what an
    interrupted run left (see the module's docstring). Inside a caller's transaction a concurrent detach is
    impossible, so the partition is dropped in place, locking the parent until that transaction ends.

    The rows are the planner's count (`pg_class.reltuples`, kept by ANALYZE): counting them exactly would read
    every row, the cost the drop avoids. A partition never analyzed is counted."""
    if not enabled() or not is_partitioned(table):
        return 0, 0
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_REMOVAL_LOCK])
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # a table with pending foreign-key checks cannot be dropped
            expired = [partition for partition in partitions(table) if partition.upper <= cutoff]
            rows = sum(_estimate(cursor, partition.name) for partition in expired)
            for partition in expired:
                cursor.execute(f'DROP TABLE "{partition.name}"')
            return len(expired), rows
        cursor.execute("SELECT pg_advisory_lock(%s)", [_REMOVAL_LOCK])
        try:
            return _detach_and_drop(cursor, table, cutoff)
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_REMOVAL_LOCK])


def _detach_and_drop(cursor, table: str, cutoff: datetime) -> tuple[int, int]:
    """Detach the expired days (finishing any detach left pending), then drop every expired detached day, this
    run's and those an interrupted run left."""
    left = _detached(cursor, table)
    rows = {partition.name: _estimate(cursor, partition.name) for partition in left if partition.upper <= cutoff}
    for partition in partitions(table):
        if partition.upper > cutoff:
            break
        rows[partition.name] = _estimate(cursor, partition.name)
        how = "FINALIZE" if partition.detach_pending else "CONCURRENTLY"
        cursor.execute(f'ALTER TABLE "{table}" DETACH PARTITION "{partition.name}" {how}')
    _drop_detached(cursor, list(rows))
    return len(rows), sum(rows.values())


def _estimate(cursor, name: str) -> int:
    cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [name])
    estimate = cursor.fetchone()[0]
    if estimate < 0:
        cursor.execute(f'SELECT count(*) FROM "{name}"')  # noqa: S608 - our partition's name
        estimate = cursor.fetchone()[0]
    return estimate


def _detached(cursor, table: str) -> list[Partition]:
    """Plain tables named like a day partition of `table`: detached by a run that stopped before its drop."""
    cursor.execute("SELECT relname, false FROM pg_class WHERE relkind = 'r' AND NOT relispartition "
                   "AND relnamespace = current_schema()::regnamespace AND starts_with(relname, %s)", [f"{table}_p"])
    return sorted(_named(table, cursor.fetchall()), key=lambda partition: partition.day)


def _drop_detached(cursor, names: list[str]) -> None:
    """Drop detached days: their foreign keys first, in one short transaction, because dropping a foreign key
    locks the table it references (traces, sessions) ACCESS EXCLUSIVE, and a DROP TABLE's commit, which
    truncates and unlinks the files, would hold that lock the while. Then one DROP for all, one commit."""
    if not names:
        return
    cursor.execute("SELECT conrelid::regclass::text, conname FROM pg_constraint "
                   "WHERE conrelid = ANY(%s::regclass[]) AND contype = 'f'", [names])
    foreign_keys = cursor.fetchall()
    with transaction.atomic():
        for table, key in foreign_keys:
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{key}"')
    cursor.execute("DROP TABLE " + ", ".join(f'"{name}"' for name in names))


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


def remove_default(cursor, table: str) -> None:
    """Move the rows of `table`'s default partition (migration 0007) into day partitions, then drop it."""
    default = f"{table}_default"
    cursor.execute("SELECT to_regclass(%s)", [default])
    if cursor.fetchone()[0] is None:
        return
    cursor.execute(f'ALTER TABLE "{table}" DETACH PARTITION "{default}"')
    cursor.execute(f"SELECT DISTINCT ({KEY} AT TIME ZONE 'UTC')::date FROM \"{default}\"")  # noqa: S608
    existing = {partition.day for partition in partitions(table)}
    for (day,) in cursor.fetchall():
        if day not in existing:
            _create(cursor, table, day)
    cursor.execute(f'INSERT INTO "{table}" SELECT * FROM "{default}"')  # noqa: S608
    cursor.execute(f'DROP TABLE "{default}"')


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
