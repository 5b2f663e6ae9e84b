"""Debugger retention on PostgreSQL: expiring 3 days of payload captures by dropping day partitions vs DELETE.

One run, one scratch database (`bench.postgres_database`), the app's own migrations (so the payload table is
partitioned by day, debugger/partitions.py). Six full days of payload captures are generated in the database
with `INSERT … SELECT generate_series` (no ORM, no encryption: each body is an envelope's size of bytes
repeated from an MD5 of its row — below the 2 KB TOAST threshold, so stored inline and never compressed, as
ciphertext would be; retention never reads them), 4 captures per trace, `SESSIONS_PER_DAY` finished sessions
a day, each with its own payload data key. The purge runs at midnight UTC, so exactly the three oldest days have expired
(expires_at = created_at + 3 days) for every contender:

- partition drop: `debugger.retention.purge_execute()` as PostgreSQL runs it (detaches the expired days
  concurrently, then drops the detached tables; the drop, where the files are truncated, is also timed apart);
- DELETE, as the purge deletes elsewhere: `purge_execute(by_partition=False)` (batches of 500 through the ORM),
  in the quick run only: each batch re-reads the expiry index past the dead entries of the batches before it,
  so on 600,000 rows it runs for tens of minutes (quadratic until a vacuum) — the one statement below is the
  fair, and far stronger, baseline;
- DELETE, one statement: `DELETE FROM debugger_payloadcapture WHERE expires_at <= midnight` (the floor of any
  row-by-row removal), then the `VACUUM` without which the space is not reusable.

The target compares the removals (the shredding after them is the same work for both).

The data is regenerated identically before each contender. All three shred the same payload data keys (one per
expired session): shredding deletes a wrapped key in the database, so the KMS call count is 0 for each,
counted from the KMS call log.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

from bench import figure, postgres_database, progress

NAME = "retention"
FULL = {"payloads": 1_200_000, "sessions_per_day": 20, "orm_contender": False}
QUICK = {"payloads": 24_000, "sessions_per_day": 4, "orm_contender": True}
DAYS = 6
EXPIRED_DAYS = 3
PER_TRACE = 4
BODY_BYTES = 256
TARGET = 50


def run(*, quick: bool) -> dict:
    params = QUICK if quick else FULL
    with postgres_database(NAME) as url:
        os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
        os.environ["DATABASE_URL"] = url
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        return _measure(params)


def _measure(params: dict) -> dict:
    from django.db import connection

    from debugger import partitions
    from debugger.retention import _shred_expired_payload_keys, purge_execute

    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    world = _World(midnight, params)
    timings, removal, reports = {}, {}, {}

    def once(key, operation):
        world.load()
        kms_before = world.kms_calls()
        started = time.perf_counter()
        report = operation(key)
        timings[key] = time.perf_counter() - started
        reports[key] = {"payloads": report[0], "data_keys_shredded": report[1], "kms_calls": world.kms_calls() - kms_before,
                        "payloads_left": world.payloads_left(), "removal_s": round(removal[key], 4)}
        progress(f"retention: {key}: {timings[key]:.3f} s, {reports[key]}")

    def timed(key, function):
        def run(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                removal[key] = removal.get(key, 0) + time.perf_counter() - started
        return run

    def drop(key):
        """The purge as PostgreSQL runs it; its removal time is that of the partition removal inside it (detach
        concurrently, then drop the detached tables), the drop also timed apart."""
        real = partitions.drop_before, partitions._drop_detached
        partitions.drop_before, partitions._drop_detached = timed(key, real[0]), timed("drop_detached", real[1])
        try:
            report = purge_execute(now=midnight)
        finally:
            partitions.drop_before, partitions._drop_detached = real
        return report.payloads, report.data_keys_shredded

    def orm(key):
        report = timed(key, purge_execute)(now=midnight, by_partition=False)
        return report.payloads, report.data_keys_shredded

    def delete(key):
        """One DELETE, then the VACUUM that makes its space reusable (dropped days need none), then the same shred."""
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM debugger_payloadcapture WHERE expires_at <= %s", [midnight])
            deleted = cursor.rowcount
            timings["delete_statement"] = time.perf_counter() - started
            cursor.execute("VACUUM debugger_payloadcapture")
        removal[key] = time.perf_counter() - started
        return deleted, _shred_expired_payload_keys(midnight)

    once("drop", drop)
    if params["orm_contender"]:
        once("delete_orm", orm)
    once("delete", delete)
    expected = world.expired_rows
    for key, report in reports.items():
        if report["payloads"] != expected or report["payloads_left"] != world.total - expected:
            raise RuntimeError(f"{key} removed {report['payloads']} payloads, expected {expected}: {report}")
        if report["data_keys_shredded"] != world.expired_sessions:
            raise RuntimeError(f"{key} shredded {report['data_keys_shredded']} keys, expected {world.expired_sessions}")
    ratio = removal["delete"] / removal["drop"]
    ratio_statement = timings["delete_statement"] / removal["drop"]
    ratio_orm = removal["delete_orm"] / removal["drop"] if "delete_orm" in removal else None
    return {
        "name": NAME,
        "description": "Expiring 3 days of Debugger payloads on PostgreSQL: day-partition drop vs DELETE",
        "figures": [
            figure("Removal by partition drop (3 days)", removal["drop"] * 1000, "ms"),
            figure("of which DETACH … CONCURRENTLY (rows gone from the table)",
                   (removal["drop"] - removal["drop_detached"]) * 1000, "ms"),
            figure("of which DROP of the detached tables (files truncated)", removal["drop_detached"] * 1000, "ms"),
            figure("Removal by DELETE + VACUUM (3 days)", removal["delete"] * 1000, "ms"),
            figure("DELETE + VACUUM ÷ partition drop (time)", ratio, "×", target=f"≥ {TARGET}×", met=ratio >= TARGET),
            figure("DELETE statement alone (no VACUUM)", timings["delete_statement"] * 1000, "ms"),
            figure("DELETE statement alone ÷ partition drop (time)", ratio_statement, "×"),
            *([figure("Purge by the ORM's DELETE batches (3 days)", removal["delete_orm"] * 1000, "ms"),
               figure("ORM-batch purge ÷ partition drop (time)", ratio_orm, "×")] if ratio_orm else []),
            figure("Whole purge with partitions (drop, shred, audit)", timings["drop"] * 1000, "ms"),
            figure("Payload rows expired", expected, "rows"),
            figure("Data keys shredded (each run)", world.expired_sessions, "keys"),
            figure("KMS calls made by the purge (partition drop)", reports["drop"]["kms_calls"], "calls"),
        ],
        "parameters": {**params, "days": DAYS, "expired_days": EXPIRED_DAYS, "payloads_per_trace": PER_TRACE,
                       "body_bytes": BODY_BYTES, "total_payload_rows": world.total,
                       "database": "PostgreSQL (scratch database), payloads partitioned by day"},
        "checks": reports,
        "notes": [
            "The purge runs at midnight UTC: the three oldest of six full days have expired, for every contender.",
            "Removal: the partition calls inside the purge vs one DELETE plus the VACUUM that makes the space "
            "reusable (a dropped partition gives its files back at once). The shredding after either is the same.",
            "Shredding a data key deletes its wrapped copy in the database: no KMS call (counted from the call log).",
            "Each contender starts from the same freshly generated rows, after VACUUM ANALYZE and a CHECKPOINT.",
        ],
    }


class _World:
    """An organization, a control plane, SESSIONS_PER_DAY finished sessions a day with payload keys, and rows."""

    def __init__(self, midnight: datetime, params: dict):
        from django.contrib.auth import get_user_model

        from konnect_admin import services

        self.midnight = midnight
        self.per_day = params["sessions_per_day"]
        self.traces_per_session = max(1, params["payloads"] // (DAYS * self.per_day * PER_TRACE))
        self.total = DAYS * self.per_day * self.traces_per_session * PER_TRACE
        self.expired_rows = self.total * EXPIRED_DAYS // DAYS
        self.expired_sessions = EXPIRED_DAYS * self.per_day
        admin = get_user_model().objects.create_user(email="bench@acme.test", password=None)
        self.organization = services.organization_create(name="Bench", actor=None)
        services.member_add(organization=self.organization, user=admin, actor=None, team="Organization Admin")
        self.control_plane = services.control_plane_create(organization=self.organization, actor=admin,
                                                           name="bench", region="us")

    def load(self) -> None:
        """Sessions, data keys, traces and payloads, generated in the database; the same rows every time."""
        from django.db import connection

        from debugger import partitions
        from debugger.models import DebugSession
        from encryption_keys.models import DataKey

        DebugSession.objects.all().delete()
        DataKey.objects.all().delete()
        partitions.ensure(start=(self.midnight - timedelta(days=DAYS)).date())  # the days a contender removed
        far = self.midnight + timedelta(days=30)
        sessions = []
        for day in range(DAYS, 0, -1):
            start = self.midnight - timedelta(days=day)
            for index in range(self.per_day):
                began = start + timedelta(seconds=index * 86_400 // self.per_day)
                sessions.append(DebugSession(control_plane=self.control_plane, name=f"d{day}s{index}", status="completed",
                                             duration_seconds=600, created_at=began, started_at=began,
                                             ends_at=began + timedelta(seconds=600),
                                             ended_at=began + timedelta(seconds=600), retain_until=far))
        DebugSession.objects.bulk_create(sessions)
        DataKey.objects.bulk_create([
            DataKey(organization=self.organization, region="us", purpose="debugger.payload", scope_ref=s.scope_ref,
                    wrapping_key_ref="arn:aws:kms:us-west-2:111122223333:key/bench", wrapped=os.urandom(184),
                    encrypt_until=s.ends_at)
            for s in sessions
        ])
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, started_at FROM debugger_debugsession")
            for session_id, began in cursor.fetchall():
                cursor.execute(
                    "INSERT INTO debugger_trace (session_id, trace_id, start_time, method, status_code, "
                    "latency_total_ms, route_id, service_id, consumer_id, created_at) "
                    "SELECT %s, md5(%s::text || i), %s + i * interval '1 ms', 'GET', 200, 12.5, 'r', 's', '', "
                    "%s + i * interval '1 ms' FROM generate_series(1, %s) i",
                    [session_id, str(session_id), began, began, self.traces_per_session])
            cursor.execute(
                "INSERT INTO debugger_payloadcapture (id, trace_id, kind, url, headers, body, body_size, created_at, "
                "expires_at) SELECT gen_random_uuid(), t.id, k.kind, NULL, NULL, "
                "decode(repeat(md5(t.id::text || k.kind), %s), 'hex'), %s, t.created_at, "
                "t.created_at + interval '3 days' FROM debugger_trace t CROSS JOIN (VALUES ('client_request'), "
                "('upstream_request'), ('upstream_response'), ('client_response')) k(kind)",
                [BODY_BYTES // 16, BODY_BYTES])
        connection.commit() if not connection.get_autocommit() else None
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE debugger_payloadcapture")
            cursor.execute("VACUUM ANALYZE debugger_trace")
            cursor.execute("CHECKPOINT")  # the generation's dirty pages are not the contender's to write

    def payloads_left(self) -> int:
        from debugger.models import PayloadCapture

        return PayloadCapture.objects.count()

    def kms_calls(self) -> int:
        from encryption_keys import call_log
        from encryption_keys.models import KmsCall

        call_log.flush()
        return KmsCall.objects.count()
