"""Where a batch's time goes on the ingest path: ``python -m bench.ingest_profile [--postgres] [--traces 50]``.

Not a `make bench` benchmark (nothing to compare, no target): a profile to read. It posts batches of simulated
Kong traces (`devtools.simulator`, the bench's traffic) through the view's own steps in this process, on a fresh
PostgreSQL database (or a temporary SQLite file), with the local KMS, and prints the median time per batch of:

    parse      pydantic-core validation of the JSON bytes (TraceBatchIn.model_validate_json)
    ingest     debugger.ingest.traces_ingest, with inside it
      seal       AES-GCM sealing of every payload/log value (DataKeyCipher.seal_rows for a batch whose data-key
                 lease covers it, DataKeyCipher.seal_field value by value otherwise)
      database   time inside the database driver (execute, executemany, COPY)
      python     the rest: row building, attribute scrubbing, base64 decoding, leases, transaction

then the cProfile of one batch's ingest, top functions by own time. Medians leave out the batches that a full
garbage collection lands on: what the process loaded is frozen out of the collector, as in a worker.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import statistics
import tempfile
import time
import uuid
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path

from bench import postgres_database


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_profile")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--traces", type=int, default=50)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--plaintext", action="store_true", help="into the plaintext twins (bench/twins.py)")
    args = parser.parse_args()
    with ExitStack() as stack:
        if args.postgres:
            url = stack.enter_context(postgres_database("profile"))
        else:
            url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='ingest-profile-')) / 'db.sqlite3'}"
        _profile(url, args.traces, args.batches, plaintext=args.plaintext)


def _profile(database_url: str, traces: int, batches: int, *, plaintext: bool) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    from debugger import ingest
    from debugger.models import DebugSession
    from debugger.schemas import TraceBatchIn
    from devtools.local_kms import LocalKmsServer, create_platform_keys
    from devtools.simulator.traffic import TrafficGenerator
    from encryption_keys.envelope import DataKeyCipher
    from encryption_keys.providers.aws import kms
    from konnect_admin import services

    kms_server = LocalKmsServer().start()
    settings.KMS_ENDPOINT_URL = kms_server.endpoint_url
    settings.PLATFORM_KMS_KEYS = create_platform_keys("us=us-west-2")
    kms.reset_clients()
    call_command("migrate", verbosity=0, interactive=False)
    store = ingest.ENCRYPTED_STORE
    if plaintext:
        from bench import twins

        twins.create_tables()
        store = twins.STORE
    from konnect_admin.models import User

    admin = User.objects.create_user(email="profile@bench.test", password=uuid.uuid4().hex)
    organization = services.organization_create(name="Profile", actor=None)
    services.member_add(organization=organization, user=admin, actor=None, team="Organization Admin")
    control_plane = services.control_plane_create(organization=organization, actor=admin, name="profile", region="us")
    later = timezone.now() + timedelta(days=1)
    session = DebugSession.objects.create(control_plane=control_plane, duration_seconds=1800, max_samples=10**9,
                                          status="in_progress", ends_at=later, retain_until=later)
    capture = dict.fromkeys(("logs", "request_headers", "request_body", "response_headers", "response_body"), True)
    generator = TrafficGenerator(seed=1)
    template = [generator.request().trace_json(capture) for _ in range(traces)]
    gc.freeze()  # as a gunicorn worker does once loaded (konnect_admin/wsgi.py)

    def body() -> bytes:
        for trace in template:
            trace["trace_id"] = uuid.uuid4().hex
        return json.dumps({"traces": template}).encode()

    timers = {"seal": 0.0, "database": 0.0}
    def timed(seal):
        def timed_seal(*args, **kwargs):
            started = time.perf_counter()
            try:
                return seal(*args, **kwargs)
            finally:
                timers["seal"] += time.perf_counter() - started

        return timed_seal

    @contextmanager
    def database_timer():
        from django.db import connection

        def wrapper(execute, sql, params, many, context):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                timers["database"] += time.perf_counter() - started

        with connection.execute_wrapper(wrapper):
            yield

    DataKeyCipher.seal_field = timed(DataKeyCipher.seal_field)
    DataKeyCipher.seal_rows = timed(DataKeyCipher.seal_rows)
    rows = {"parse": [], "ingest": [], "seal": [], "database": [], "python": []}
    copy_time = _time_copy(timers)
    ingest.traces_ingest(control_plane=control_plane, session_id=session.pk,
                         traces=TraceBatchIn.model_validate_json(body()).traces, store=store)  # warm-up: data keys, caches
    for _ in range(batches):
        data = body()
        timers.update(seal=0.0, database=0.0)
        started = time.perf_counter()
        batch = TraceBatchIn.model_validate_json(data)
        parsed = time.perf_counter()
        with database_timer():
            ingest.traces_ingest(control_plane=control_plane, session_id=session.pk, traces=batch.traces, store=store)
        done = time.perf_counter()
        rows["parse"].append(parsed - started)
        rows["ingest"].append(done - parsed)
        rows["seal"].append(timers["seal"])
        rows["database"].append(timers["database"])
        rows["python"].append(done - parsed - timers["seal"] - timers["database"])
    copy_time.restore()
    spans = sum(len(trace["spans"]) for trace in template)
    payloads = sum(len(trace["payloads"]) for trace in template)
    logs = sum(len(trace["logs"]) for trace in template)
    print(f"{settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}: batches of {traces} traces "
          f"({spans} spans, {payloads} payloads, {logs} logs, {len(data) // 1024} KiB), median of {batches}:")
    total = statistics.median(rows["parse"]) + statistics.median(rows["ingest"])
    for name, values in rows.items():
        median = statistics.median(values)
        print(f"  {name:9} {median * 1000:7.2f} ms  {median / total:6.1%}")
    print(f"  => {traces / total:,.0f} traces/s in one process (no HTTP)")
    profile = cProfile.Profile()
    batch = TraceBatchIn.model_validate_json(body())
    profile.enable()
    ingest.traces_ingest(control_plane=control_plane, session_id=session.pk, traces=batch.traces, store=store)
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    kms_server.stop()


class _time_copy:  # noqa: N801 - a patch, used like a context
    """COPY goes through psycopg's cursor.copy, not Django's execute wrapper: time it into `database` too."""

    def __init__(self, timers: dict):
        try:
            import psycopg
        except ImportError:
            self.cls = None
            return
        self.cls = psycopg.Cursor
        self.original = psycopg.Cursor.copy
        original = self.original

        @contextmanager
        def copy(cursor, *args, **kwargs):
            started = time.perf_counter()
            try:
                with original(cursor, *args, **kwargs) as handle:
                    yield handle
            finally:
                timers["database"] += time.perf_counter() - started

        psycopg.Cursor.copy = copy

    def restore(self) -> None:
        if self.cls is not None:
            self.cls.copy = self.original


if __name__ == "__main__":
    main()
