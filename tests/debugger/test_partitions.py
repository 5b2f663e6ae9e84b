"""Day partitions of payloads, logs and spans on PostgreSQL (debugger/partitions.py); nothing of it on SQLite.

The PostgreSQL tests run with DATABASE_URL=postgres://…; on SQLite they are skipped and the SQLite test
checks that partition work is a no-op there (retention deletes rows: tests/debugger/test_purge.py)."""

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from debugger import partitions
from debugger.ingest import LATE_DATA_GRACE
from debugger.models import PAYLOAD_RETENTION, DebugSession, PayloadCapture, RequestLog, Span, Trace
from debugger.retention import purge_execute
from debugger.tasks import ensure_debugger_partitions
from encryption_keys import keyring
from encryption_keys.models import DataKey

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions are PostgreSQL's")
BEFORE = [("debugger", "0005_partition_keys_and_keyset_indexes")]
WITH_DEFAULT = [("debugger", "0006_partition_payloads_logs_spans")]
AFTER = [("debugger", "0007_remove_default_partitions")]


def partition_of(table, pk) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT tableoid::regclass::text FROM "{table}" WHERE id = %s', [pk])  # noqa: S608
        return cursor.fetchone()[0]


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite side")
def test_sqlite_has_no_partitions():
    assert partitions.ensure() == []
    assert partitions.drop_before("debugger_payloadcapture", timezone.now()) == (0, 0)


@postgres_only
@pytest.mark.django_db
def test_tables_are_partitioned_by_day_with_days_ahead(ingest):
    for table in partitions.PARTITIONED:
        assert partitions.is_partitioned(table)
        days = [partition.day for partition in partitions.partitions(table)]
        today = datetime.now(UTC).date()
        assert today in days and today + timedelta(days=partitions.days_ahead()) in days
    ingest(1)
    today = f"p{datetime.now(UTC):%Y%m%d}"
    assert partition_of("debugger_payloadcapture", PayloadCapture.objects.first().pk).endswith(today)
    assert partition_of("debugger_span", Span.objects.first().pk).endswith(today)
    assert partition_of("debugger_requestlog", RequestLog.objects.first().pk).endswith(today)


@postgres_only
@pytest.mark.django_db
def test_no_default_partition_after_migrate():
    """A default partition would forbid the concurrent detach retention relies on."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relispartition "
                       "AND pg_get_expr(relpartbound, oid) = 'DEFAULT'")
        assert cursor.fetchone()[0] == 0
        for table in partitions.PARTITIONED:
            cursor.execute("SELECT to_regclass(%s)", [f"{table}_default"])
            assert cursor.fetchone()[0] is None


@postgres_only
@pytest.mark.django_db
def test_the_scheduled_task_creates_missing_days():
    far = datetime.now(UTC).date() + timedelta(days=30)
    made = partitions.ensure(start=far, today=far, ahead=0)
    assert made == [partitions.partition_name(table, far) for table in partitions.PARTITIONED]
    assert ensure_debugger_partitions.call() == []  # the next days exist already


@postgres_only
@pytest.mark.django_db
def test_ingest_on_a_day_nobody_created_ahead_creates_it(ingest):
    """Were the scheduler down for days, ingest still stores its rows: it creates the day it writes into."""
    today = datetime.now(UTC).date()
    with connection.cursor() as cursor:
        for table in partitions.PARTITIONED:
            for day in (today, today + timedelta(days=1)):
                cursor.execute(f'DROP TABLE "{partitions.partition_name(table, day)}"')  # rolled back after the test
    partitions.reset_for_tests()  # this process saw today's partitions before they were dropped
    ingest(1)
    assert partition_of("debugger_payloadcapture", PayloadCapture.objects.first().pk).endswith(f"p{today:%Y%m%d}")
    assert {partitions.partition_name(table, day) for table in partitions.PARTITIONED
            for day in (today, today + timedelta(days=1))} <= {
        partition.name for table in partitions.PARTITIONED for partition in partitions.partitions(table)}


def exists(relation: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [relation])
        return cursor.fetchone()[0] is not None


def leftovers(table: str) -> list[str]:
    """Tables named like a day partition of `table` that are not attached, and partitions pending a detach."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relkind = 'r' AND NOT relispartition "
                       "AND starts_with(relname, %s)", [f"{table}_p"])
        detached = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass "
                       "AND inhdetachpending", [table])
        return detached + [row[0] for row in cursor.fetchall()]


def expire_day(session, days_ago: int):
    """Store `session`'s payloads `days_ago` days back, in that day's partition, and end the session then."""
    day = datetime.now(UTC).date() - timedelta(days=days_ago)
    partitions.ensure(start=day, ahead=0)
    stored = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=1)
    DebugSession.objects.filter(pk=session.pk).update(status="completed", ended_at=stored)
    PayloadCapture.objects.filter(trace__session=session).update(created_at=stored, expires_at=stored + PAYLOAD_RETENTION)
    return partitions.partition_name("debugger_payloadcapture", day)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_retention_detaches_and_drops_expired_days_leaving_nothing_behind(debug_session, make_session, ingest):
    young = make_session(name="young")
    ingest(2)
    ingest(1, session=young)
    name = expire_day(debug_session, 5)
    report = purge_execute()
    assert report.payloads == 4 and report.partitions_dropped >= 1 and not exists(name)
    assert leftovers("debugger_payloadcapture") == []
    assert PayloadCapture.objects.filter(trace__session=young).count() == 2
    assert DataKey.objects.get(purpose="debugger.payload", scope_ref=debug_session.scope_ref).shredded_at is not None
    assert DataKey.objects.get(purpose="debugger.payload", scope_ref=young.scope_ref).shredded_at is None


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_detach_interrupted_half_way_is_finalized_and_dropped_by_the_next_run(debug_session, make_session, ingest):
    """A concurrent detach cancelled while it waits leaves the partition pending; one stopped before its drop
    leaves a plain table: the next run removes both and counts their rows."""
    other = make_session(name="other")
    ingest(1)
    ingest(1, session=other)
    pending, detached = expire_day(debug_session, 5), expire_day(other, 6)
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE debugger_payloadcapture DETACH PARTITION "{detached}"')
    settings = connection.settings_dict
    url = f"host={settings['HOST']} port={settings['PORT'] or 5432} user={settings['USER']} dbname={settings['NAME']}"
    with psycopg.connect(url, password=settings["PASSWORD"] or None) as reader, \
            psycopg.connect(url, password=settings["PASSWORD"] or None, autocommit=True) as retention:
        reader.execute("SELECT count(*) FROM debugger_payloadcapture")  # its transaction stays open
        retention.execute("SET statement_timeout = '300ms'")  # the detach waits for the reader, then is cancelled
        with pytest.raises(psycopg.errors.QueryCanceled):
            retention.execute(f'ALTER TABLE debugger_payloadcapture DETACH PARTITION "{pending}" CONCURRENTLY')
    assert sorted(leftovers("debugger_payloadcapture")) == sorted([pending, detached])
    report = purge_execute()
    assert leftovers("debugger_payloadcapture") == [] and not exists(pending) and not exists(detached)
    assert report.payloads == 4 and PayloadCapture.objects.count() == 0


@postgres_only
@pytest.mark.django_db
def test_retention_drops_expired_days_and_shreds_each_session_exactly(debug_session, make_session, ingest):
    old, young = debug_session, make_session(name="young")
    ingest(2, session=old)
    ingest(1, session=young)
    day = datetime.now(UTC).date() - timedelta(days=5)
    partitions.ensure(start=day, ahead=0)
    stored = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=1)
    for session, ended in ((old, stored), (young, timezone.now())):
        DebugSession.objects.filter(pk=session.pk).update(status="completed", ended_at=ended)
    PayloadCapture.objects.filter(trace__session=old).update(created_at=stored, expires_at=stored + PAYLOAD_RETENTION)
    report = purge_execute()
    assert report.payloads == 4 and report.partitions_dropped >= 1
    assert not partitions.is_partitioned("x") and partitions.partition_name("debugger_payloadcapture", day) not in {
        partition.name for partition in partitions.partitions("debugger_payloadcapture")}
    assert PayloadCapture.objects.filter(trace__session=young).count() == 2
    payload_key = DataKey.objects.filter(purpose="debugger.payload")
    assert payload_key.get(scope_ref=old.scope_ref).shredded_at is not None
    assert payload_key.get(scope_ref=young.scope_ref).shredded_at is None
    assert DataKey.objects.get(purpose="debugger.log", scope_ref=old.scope_ref).shredded_at is None
    assert report.data_keys_shredded == 1


@postgres_only
@pytest.mark.django_db
def test_a_session_whose_payloads_expired_is_shredded_before_its_day_is_dropped(debug_session, ingest):
    ingest(1)
    ended = timezone.now()
    DebugSession.objects.filter(pk=debug_session.pk).update(status="completed", ended_at=ended)
    last_expiry = ended + LATE_DATA_GRACE + PAYLOAD_RETENTION  # no payload is stored after the grace
    report = purge_execute(now=last_expiry - timedelta(seconds=1))
    assert report.data_keys_shredded == 0  # a late payload could still come and would not have expired
    report = purge_execute(now=last_expiry)
    assert report.data_keys_shredded == 1  # its payloads' day is not dropped yet: they stay, unreadable
    assert report.partitions_dropped == 0 and PayloadCapture.objects.count() == 2
    keyring.reset_for_tests()
    assert all(not result.ok for result in keyring.reveal_many(p.body for p in PayloadCapture.objects.all()))


@postgres_only
@pytest.mark.django_db
def test_deleting_a_session_deletes_its_rows_in_every_partition(debug_session, ingest, org_admin):
    from debugger import services

    ingest(2)
    services.session_delete(actor=org_admin, session=debug_session)
    assert not PayloadCapture.objects.exists() and not Span.objects.exists() and not RequestLog.objects.exists()


def bodies() -> dict:
    captures = list(PayloadCapture.objects.select_related(*PayloadCapture.encryption_scope_related))
    return {c.pk: r.value for c, r in zip(captures, keyring.reveal_many(c.body for c in captures), strict=True)}


def messages() -> list:
    logs = list(RequestLog.objects.select_related(*RequestLog.encryption_scope_related))
    return sorted(r.value for r in keyring.reveal_many(log.message for log in logs))


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_existing_rows_readable(debug_session, ingest, org_admin):
    """Rows stored in plain tables (0005) are copied into partitions by 0006, readable, ids continuing.

    The rows are ingested and read by today's code (whose trace rows have columns 0005 lacks), then taken back
    to plain tables by reversing 0006 and on, which keeps them."""
    ingest(3)
    spans = dict(Span.objects.values_list("id", "trace__created_at"))
    before = bodies()
    logs = messages()
    MigrationExecutor(connection).migrate(BEFORE)
    try:
        assert not partitions.is_partitioned("debugger_span")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert all(partitions.is_partitioned(table) for table in partitions.PARTITIONED)
    keyring.reset_for_tests()
    assert bodies() == before and len(before) == 6 and all(before.values())
    assert messages() == logs and len(logs) == 6
    assert dict(Span.objects.values_list("id", "created_at")) == spans  # created_at taken from the trace
    ingest(1)
    assert Span.objects.count() == len(spans) + 3 and min(Span.objects.filter(
        trace=Trace.objects.latest("created_at")).values_list("id", flat=True)) > max(spans)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_removing_the_default_partition_moves_its_rows_into_day_partitions(debug_session, ingest):
    """Rows that 0006's default partition took (a day nobody created) land in their own day, readable."""
    ingest(2)
    before = bodies()  # read by today's code, whose trace rows have columns 0006 lacks
    far = datetime.now(UTC).date() + timedelta(days=40)
    MigrationExecutor(connection).migrate(WITH_DEFAULT)
    try:
        stray = PayloadCapture.objects.only("pk").first()
        PayloadCapture.objects.filter(pk=stray.pk).update(created_at=datetime.combine(far, datetime.min.time(), UTC))
        assert partition_of("debugger_payloadcapture", stray.pk) == "debugger_payloadcapture_default"
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)  # 0007 alone, then the rest: later tests need today's schema
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert partition_of("debugger_payloadcapture", stray.pk) == partitions.partition_name("debugger_payloadcapture", far)
    assert not exists("debugger_payloadcapture_default")
    keyring.reset_for_tests()
    assert bodies() == before and len(before) == 4 and all(before.values())


def waiting_to_detach(cursor) -> bool:
    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                   "AND query LIKE %s", ["%DETACH PARTITION%"])
    return cursor.fetchone()[0] > 0


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_ingest_goes_on_while_retention_waits_to_detach_a_day(debug_session, make_session, ingest):
    """The concurrent detach waits for the transactions that could see the day, without blocking writes."""
    expired = make_session(name="expired")
    ingest(1, session=expired)
    name = expire_day(expired, 5)
    settings = connection.settings_dict
    url = f"host={settings['HOST']} port={settings['PORT'] or 5432} user={settings['USER']} dbname={settings['NAME']}"
    done = {}

    def retention():
        try:
            done["result"] = partitions.drop_before("debugger_payloadcapture", timezone.now() - PAYLOAD_RETENTION)
        finally:
            connection.close()

    with psycopg.connect(url, password=settings["PASSWORD"] or None) as reader:
        reader.execute("SELECT count(*) FROM debugger_payloadcapture")  # its transaction stays open
        thread = threading.Thread(target=retention)
        thread.start()
        with connection.cursor() as cursor:  # autocommit: each look at pg_stat_activity is a fresh one
            while not waiting_to_detach(cursor):
                assert thread.is_alive()
            cursor.execute("SET lock_timeout = '5s'")  # were ingest blocked, it fails instead of hanging
        try:
            ingest(2)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        assert thread.is_alive()  # still waiting for the reader
    thread.join()
    assert done["result"][1] == 2 and not exists(name)  # the expired payloads, gone with their day
    assert PayloadCapture.objects.filter(trace__session=debug_session).count() == 4
