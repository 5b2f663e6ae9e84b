"""Debugger ingest on PostgreSQL under gunicorn: one trace per request vs batches of 50, encrypted vs plaintext
twins, against the floor of the same rows written straight with `COPY`.

Set-up as bench/load.py (a fresh PostgreSQL database, the local KMS in this process, gunicorn with several
workers of the real app under production settings, the organization's CMEK linked), with the plaintext twins'
endpoints added (bench/twins.py: same code, `store=` tables with plain columns). Client threads post simulated
Kong traces (`devtools.simulator`: ~18 spans, 4 payload captures with headers and JSON bodies, ~4 log lines each)
for a fixed time per contender; contenders alternate within each round and ratios are medians of per-round ratios
(`bench` package docstring).

The floor is the database's own limit for these rows: the same number of connections as gunicorn workers, each
writing batches of 50 traces with psycopg's `COPY` into the same tables (traces, spans, payload captures, log
lines) in one transaction per batch — no HTTP, no Django, no parsing, no encryption (payload and log values go
in as plaintext bytes). Its rows are built from the same simulated traces, decoded once beforehand.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

from bench import figure, median_rate, median_ratio, postgres_database, progress

NAME = "debugger_ingest"
FULL = {"rounds": 5, "seconds": 5.0, "clients": 8, "workers": 4}
QUICK = {"rounds": 1, "seconds": 2.0, "clients": 4, "workers": 2}
BATCH = 50
TARGET_BATCH_VS_SINGLE = 10.0
TARGET_BATCH_VS_FLOOR = 0.3
TARGET_ENCRYPTED_VS_PLAIN = 0.9
CHART = "Debugger ingest on PostgreSQL under gunicorn: traces per second"
CONTENDERS = [
    ("single_encrypted", "1 trace/request, encrypted"),
    ("single_plaintext", "1 trace/request, plaintext twins"),
    ("batch_encrypted", f"{BATCH} traces/request, encrypted"),
    ("batch_plaintext", f"{BATCH} traces/request, plaintext twins"),
    ("copy_floor", f"COPY floor ({BATCH} traces/transaction, psycopg, no app)"),
]


def run(*, quick: bool) -> dict:
    from bench.load import Gunicorn, World

    params = QUICK if quick else FULL
    load_before = os.getloadavg()[0]
    with postgres_database("ingest") as database_url:
        world = World(quick=quick, database_url=database_url)
        world.env["DJANGO_SETTINGS_MODULE"] = "bench.settings_ingest"
        world.env.pop("KONNECT_DATAKEY_CACHE_TTL")  # the load test's tight revocation bound; here the default
        os.environ.update(world.env)
        os.environ.pop("KONNECT_DATAKEY_CACHE_TTL", None)
        try:
            world.seed()
            from bench import twins

            twins.create_tables()
            progress(f"debugger_ingest: gunicorn with {params['workers']} workers, {params['clients']} clients")
            gunicorn = Gunicorn(world, workers=params["workers"])
            try:
                bench = _Bench(world, gunicorn, database_url, params)
                samples = bench.measure()
                checks = bench.check()
            finally:
                gunicorn.stop()
        finally:
            world.close()
    return _result(samples, checks, params, load_before)


class _Bench:
    def __init__(self, world, gunicorn, database_url: str, params: dict):
        from devtools.simulator.traffic import TrafficGenerator

        self.world, self.gunicorn, self.params = world, gunicorn, params
        self.database_url = database_url
        capture = dict.fromkeys(("logs", "request_headers", "request_body", "response_headers", "response_body"),
                                True)
        generator = TrafficGenerator(seed=1)
        self.traces = [generator.request().trace_json(capture) for _ in range(BATCH)]
        self.single = _Body([self.traces[0]])
        self.batch = _Body(self.traces)
        sessions = world.sessions
        self.paths = {
            "single_encrypted": (f"/api/us/v1/debugger/sessions/{sessions[0]}/traces", self.single),
            "single_plaintext": (f"/api/us/v1-plaintext-twin/debugger/sessions/{sessions[1]}/traces", self.single),
            "batch_encrypted": (f"/api/us/v1/debugger/sessions/{sessions[2]}/trace-batches", self.batch),
            "batch_plaintext": (f"/api/us/v1-plaintext-twin/debugger/sessions/{sessions[3]}/trace-batches",
                                self.batch),
        }
        self.floor_session = sessions[0]
        self.acknowledged = dict.fromkeys(self.paths, 0)
        self.floor_rows = _FloorRows(self.traces, sessions[0])
        self.floor_traces = 0
        self.errors: list[str] = []

    def measure(self) -> list[dict]:
        progress("debugger_ingest: warming up every contender")
        for key in self.paths:
            for _ in range(3):
                self._post(key)
        self._drive("copy_floor", 1.0)
        samples = []
        for index in range(self.params["rounds"]):
            order = [key for key, _label in CONTENDERS]
            shift = index % len(order)
            row = {}
            for key in [*order[shift:], *order[:shift]]:
                row[key] = self._drive(key, self.params["seconds"])
            samples.append(row)
            progress(f"  round {index + 1}/{self.params['rounds']}: "
                     + ", ".join(f"{key} {rate:,.0f}/s" for key, rate in row.items()))
        if self.errors:
            raise RuntimeError(f"{len(self.errors)} requests failed, e.g. {self.errors[:3]}")
        return samples

    def _drive(self, key: str, seconds: float) -> float:
        """Traces per second stored by this contender with every client busy for `seconds`."""
        floor = key == "copy_floor"
        threads_count = self.params["workers"] if floor else self.params["clients"]
        counts = [0] * threads_count
        deadline = time.monotonic() + seconds

        def loop(number: int) -> None:
            connection = self._floor_connection() if floor else None
            try:
                while time.monotonic() < deadline:
                    counts[number] += self._copy(connection) if floor else self._post(key)
            finally:
                if connection is not None:
                    connection.close()

        threads = [threading.Thread(target=loop, args=(number,)) for number in range(threads_count)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(counts) / (time.monotonic() - started)

    def _post(self, key: str) -> int:
        path, body = self.paths[key]
        request = urllib.request.Request(  # noqa: S310 - loopback
            self.gunicorn.url + path, data=body.fresh(), method="POST",
            headers={"Authorization": f"Bearer {self.world.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                answer = json.loads(response.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            self.errors.append(f"{key}: {error!r}"[:300])
            return 0
        if answer["accepted"] != body.count:
            self.errors.append(f"{key}: accepted {answer['accepted']} of {body.count}")
        self.acknowledged[key] += answer["accepted"]
        return answer["accepted"]

    def _floor_connection(self):
        import psycopg

        return psycopg.connect(self.database_url)

    def _copy(self, connection) -> int:
        count = self.floor_rows.write(connection)
        self.floor_traces += count
        return count

    def check(self) -> dict:
        """Every acknowledged trace is stored with its rows, sealed on one side and plaintext on the other."""
        from django.db import connection

        from debugger.models import PayloadCapture, Trace

        sessions = self.world.sessions
        stored = {key: Trace.objects.filter(session_id=sessions[index]).count()
                  for index, key in enumerate(self.paths)}
        stored["single_encrypted"] -= self.floor_traces  # the floor wrote into the same session's tables
        for key, count in self.acknowledged.items():
            if stored[key] != count:
                raise RuntimeError(f"{key}: {count} traces acknowledged, {stored[key]} stored")
        with connection.cursor() as cursor:
            cursor.execute("SELECT body FROM debugger_payloadcapture p JOIN debugger_trace t ON t.id = p.trace_id "
                           "WHERE t.session_id = %s AND body IS NOT NULL LIMIT 20", [sessions[2]])
            sealed = [bytes(row[0]) for row in cursor.fetchall()]
            cursor.execute("SELECT body FROM bench_plain_payloadcapture WHERE body IS NOT NULL LIMIT 20")
            plain = [bytes(row[0]) for row in cursor.fetchall()]
        if not sealed or not all(value[0] == 2 for value in sealed) or not plain or any(v[:1] == b"\x02" for v in plain):
            raise RuntimeError("the encrypted contender did not store envelopes, or the twins not plaintext")
        return {"traces_stored": stored, "floor_traces": self.floor_traces,
                "payload_rows_encrypted_batch": PayloadCapture.objects.filter(trace__session_id=sessions[2]).count()}


class _Body:
    """The JSON of some traces, with fresh trace ids for every request (spliced in, not re-serialized)."""

    def __init__(self, traces: list[dict]):
        self.count = len(traces)
        blob = json.dumps({"traces": traces}).encode()
        ids = [trace["trace_id"].encode() for trace in traces]
        self.parts = re.split(b"(" + b"|".join(ids) + b")", blob)

    def fresh(self) -> bytes:
        new = {}
        return b"".join(part if index % 2 == 0 else new.setdefault(part, uuid.uuid4().hex.encode())
                        for index, part in enumerate(self.parts))


class _FloorRows:
    """The rows ingest writes for a batch, as plain tuples (decoded once), COPYed with fresh ids."""

    TRACE = ("id", "session_id", "trace_id", "start_time", "method", "status_code", "latency_total_ms",
             "latency_upstream_ms", "latency_kong_ms", "route_id", "service_id", "consumer_id", "route_name",
             "service_name", "created_at")
    SPAN = ("trace_id", "span_id", "parent_span_id", "name", "start_ns", "end_ns", "attributes")
    PAYLOAD = ("id", "trace_id", "kind", "url", "headers", "body", "body_size", "created_at", "expires_at")
    LOG = ("id", "session_id", "trace_id", "span_id", "time", "level", "message")

    def __init__(self, traces: list[dict], session_id):
        import base64

        from debugger.attributes import trace_names

        self.session_id = session_id
        self.traces = []
        for trace in traces:
            latency = trace["latency"]
            spans = [(span["span_id"], span.get("parent_span_id") or "", span["name"], span["start_time_unix_nano"],
                      span["end_time_unix_nano"], json.dumps(span.get("attributes", {}))) for span in trace["spans"]]
            payloads = [(payload["kind"], payload.get("url", "").encode() or None,
                         json.dumps(payload["headers"]).encode() if "headers" in payload else None,
                         base64.b64decode(payload["body_base64"]) if "body_base64" in payload else None)
                        for payload in trace["payloads"]]
            logs = [(log.get("span_id") or "", datetime.fromisoformat(log["time"]), log["level"],
                     log["message"].encode()) for log in trace["logs"]]
            names = trace_names((span["start_time_unix_nano"], span.get("attributes", {})) for span in trace["spans"])
            self.traces.append(((datetime.fromisoformat(trace["start_time"]), trace["method"], trace["status_code"],
                                 latency["total_ms"], latency["upstream_ms"], latency["kong_ms"], trace["route_id"],
                                 trace["service_id"], trace["consumer_id"], names.get("route", ""),
                                 names.get("service", "")), spans, payloads, logs))

    def write(self, connection) -> int:
        now = datetime.now(UTC)
        expires = now + timedelta(days=3)
        with connection.transaction(), connection.cursor() as cursor:
            cursor.execute("SELECT nextval(pg_get_serial_sequence('debugger_trace', 'id')) "
                           "FROM generate_series(1, %s)", [len(self.traces)])
            ids = [row[0] for row in cursor.fetchall()]
            trace_ids = [uuid.uuid4().hex for _ in self.traces]
            with cursor.copy(f"COPY debugger_trace ({', '.join(self.TRACE)}) FROM STDIN") as copy:
                for pk, trace_id, (meta, *_rest) in zip(ids, trace_ids, self.traces, strict=True):
                    copy.write_row((pk, self.session_id, trace_id, *meta, now))
            with cursor.copy(f"COPY debugger_span ({', '.join(self.SPAN)}) FROM STDIN") as copy:
                for pk, (_meta, spans, _payloads, _logs) in zip(ids, self.traces, strict=True):
                    for span in spans:
                        copy.write_row((pk, *span))
            with cursor.copy(f"COPY debugger_payloadcapture ({', '.join(self.PAYLOAD)}) FROM STDIN") as copy:
                for pk, (_meta, _spans, payloads, _logs) in zip(ids, self.traces, strict=True):
                    for kind, url, headers, body in payloads:
                        copy.write_row((uuid.uuid4(), pk, kind, url, headers, body, len(body or b""), now, expires))
            with cursor.copy(f"COPY debugger_requestlog ({', '.join(self.LOG)}) FROM STDIN") as copy:
                for trace_id, (_meta, _spans, _payloads, logs) in zip(trace_ids, self.traces, strict=True):
                    for span_id, moment, level, message in logs:
                        copy.write_row((uuid.uuid4(), self.session_id, trace_id, span_id, moment, level, message))
        return len(self.traces)


def _result(samples: list[dict], checks: dict, params: dict, load_before: float) -> dict:
    rate = {key: median_rate(samples, key) for key, _label in CONTENDERS}
    batch_vs_single = median_ratio(samples, "batch_encrypted", "single_encrypted")
    batch_vs_floor = median_ratio(samples, "batch_encrypted", "copy_floor")
    encrypted_vs_plain = median_ratio(samples, "batch_encrypted", "batch_plaintext")
    single_encrypted_vs_plain = median_ratio(samples, "single_encrypted", "single_plaintext")
    return {
        "name": NAME,
        "description": f"Debugger ingest over HTTP under gunicorn ({params['workers']} workers, {params['clients']} "
                       f"clients) on PostgreSQL: 1 vs {BATCH} traces per request, encrypted vs plaintext twins, "
                       "and the COPY floor",
        "figures": [
            *[figure(f"Ingest, {label}: traces/s", rate[key], "traces/s", chart_group=CHART)
              for key, label in CONTENDERS],
            figure(f"Batched ({BATCH}/request) ÷ single-trace ingest, encrypted", batch_vs_single, "×",
                   target=f"≥ {TARGET_BATCH_VS_SINGLE:g}×", met=batch_vs_single >= TARGET_BATCH_VS_SINGLE),
            figure("Batched encrypted ingest ÷ COPY floor", batch_vs_floor, "×",
                   target=f"≥ {TARGET_BATCH_VS_FLOOR:g}×", met=batch_vs_floor >= TARGET_BATCH_VS_FLOOR),
            figure("Batched ingest, encrypted ÷ plaintext twins", encrypted_vs_plain, "×",
                   target=f"≥ {TARGET_ENCRYPTED_VS_PLAIN:g}×", met=encrypted_vs_plain >= TARGET_ENCRYPTED_VS_PLAIN),
            figure("Single-trace ingest, encrypted ÷ plaintext twins", single_encrypted_vs_plain, "×"),
        ],
        "parameters": {**params, "batch": BATCH, "database": "PostgreSQL (fresh database)",
                       "server": "gunicorn sync workers, production settings",
                       "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                       "cpus": os.cpu_count()},
        "checks": checks,
        "notes": [
            f"Absolute: {rate['single_encrypted']:,.0f} traces/s one per request, {rate['batch_encrypted']:,.0f} "
            f"traces/s in batches of {BATCH} (encrypted), against a COPY floor of {rate['copy_floor']:,.0f} "
            "traces/s; the database, gunicorn and the clients share this machine's CPUs.",
            "Each request opens a new TCP connection (gunicorn's sync workers close after every response).",
        ],
        "samples": samples,
    }
