"""Load with nothing lost: data planes posting traces under gunicorn on PostgreSQL while the key is
replaced and the KMS server goes down and comes back.

Set-up (all on loopback): a fresh PostgreSQL database, the local KMS server in this process (so a
stop/start keeps its keys), gunicorn with several workers of the real app, a linked multi-region CMEK.
N client threads post one trace each (spans + 2 encrypted payloads + 2 encrypted log lines, stored
all or nothing) for a fixed time. A quarter in, `rewrap_data_keys --yes` replaces the CMEK with a new
one; half-way, the KMS server is stopped for a few seconds and started again.

Afterwards, with KMS up and a cold key cache, it checks that every acknowledged trace is in the
database and that its payload and log plaintexts reveal exactly as sent; that every refused write got
503 and left nothing behind; and that no other status was seen. Reports throughput and latency
percentiles.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import figure, postgres_database, progress

PROJECT_ROOT = Path(__file__).resolve().parent.parent
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class World:
    """Everything the run creates, and the environment its subprocesses share."""

    def __init__(self, *, quick: bool, database_url: str):
        from devtools.local_kms import LocalKmsServer, create_key, create_platform_keys, replicate_key

        self.quick = quick
        self.kms = LocalKmsServer(port=_free_port()).start()
        platform = create_platform_keys("us=us-west-2+us-east-2")
        self.old_arn = create_key(region="us-west-2", multi_region=True, description="load: old CMEK")
        self.new_arn = create_key(region="us-west-2", multi_region=True, description="load: new CMEK")
        for arn in (self.old_arn, self.new_arn):
            replicate_key(arn, to_region="us-east-2")
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("KONNECT_", "DJANGO_"))},
            "DJANGO_SETTINGS_MODULE": "konnect_admin.settings",
            "KONNECT_SECRET_KEY": secrets.token_urlsafe(48),
            "KONNECT_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "KONNECT_SECURE_SSL_REDIRECT": "false",
            "KONNECT_DATABASE_URL": database_url,
            "KONNECT_KMS_ENDPOINT_URL": self.kms.endpoint_url,
            "KONNECT_PLATFORM_KMS_KEYS": ",".join(f"{geo}={arn}" for geo, arn in platform.items()),
            "KONNECT_KMS_CONNECT_TIMEOUT": "1",
            "KONNECT_KMS_READ_TIMEOUT": "3",
            "KONNECT_KMS_MAX_ATTEMPTS": "1",
            "KONNECT_DATAKEY_FAILURE_TTL": "1",
            # A tight revocation bound, so writers need KMS again during the outage and some writes are refused.
            "KONNECT_DATAKEY_CACHE_TTL": "2",
            # Production refuses a cache its workers do not share; the database cache needs no extra server.
            "KONNECT_CACHE_BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "KONNECT_CACHE_LOCATION": "konnect_cache",
            "KONNECT_PLATFORM_KMS_PRINCIPAL": "arn:aws:iam::210987654321:role/konnect-load-bench",
            "KONNECT_LOG_LEVEL": "WARNING",
        }
        os.environ.update(self.env)

    def seed(self) -> None:
        import django
        from django.core.management import call_command
        from django.utils import timezone

        django.setup()
        call_command("migrate", verbosity=0)
        call_command("createcachetable", verbosity=0)
        from debugger.models import DebugSession, SessionStatus
        from encryption_keys.models import EncryptionKey
        from konnect_admin import services, tokens
        from konnect_admin.models import User

        self.organization = services.organization_create(name="Load Co", actor=None)
        admin = User.objects.create_user(email="load@bench.test", password=secrets.token_urlsafe(16))
        services.member_add(organization=self.organization, user=admin, actor=None, team="Organization Admin")
        EncryptionKey.objects.create(organization=self.organization, region="us", name="load", key_ref=self.old_arn)
        control_plane = services.control_plane_create(organization=self.organization, actor=admin, name="load-cp",
                                                      region="us")
        _token, self.token = tokens.data_plane_token_create(actor=admin, control_plane=control_plane, name="load")
        now = timezone.now()
        self.sessions = [
            DebugSession.objects.create(
                control_plane=control_plane, name=f"load {index}", status=SessionStatus.IN_PROGRESS,
                duration_seconds=1800, max_samples=1_000_000, started_at=now,
                ends_at=now + timedelta(minutes=30), retain_until=now + timedelta(days=15),
            ).pk
            for index in range(4)
        ]

    def close(self) -> None:
        self.kms.stop()


class Gunicorn:
    def __init__(self, world: World, *, workers: int):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "konnect_admin.wsgi", "--workers", str(workers),
             "--bind", f"127.0.0.1:{self.port}", "--timeout", "60", "--log-level", "warning"],
            cwd=PROJECT_ROOT, env=world.env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/api/us/v1/openapi.json", timeout=2)  # noqa: S310 - loopback
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):  # workers still booting
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("gunicorn did not answer within 30 s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _trace(index: int) -> tuple[dict, dict]:
    """One trace of the wire format, and the plaintexts it carries (to check after the run)."""
    trace_id = secrets.token_hex(16)
    marker = f"load-{trace_id}"
    body = json.dumps({"order": index, "marker": marker, "items": ["x" * 40] * 20}).encode()
    start_ns = time.time_ns()
    spans = [{"span_id": secrets.token_hex(8), "name": name, "start_time_unix_nano": start_ns + offset,
              "end_time_unix_nano": start_ns + offset + 900_000} for offset, name in
             enumerate(["kong.phase.rewrite", "kong.phase.access", "kong.balancer", "kong.phase.log"])]
    trace = {
        "trace_id": trace_id,
        "start_time": datetime.now(UTC).isoformat(),
        "method": "POST",
        "status_code": 201,
        "latency": {"total_ms": 12.5, "upstream_ms": 9.0, "kong_ms": 3.5},
        "route_id": "orders", "service_id": "orders-svc",
        "spans": spans,
        "payloads": [
            {"kind": "client_request", "url": f"https://api.example.test/orders?m={marker}",
             "headers": {"content-type": "application/json", "authorization": "Bearer ****"},
             "body_base64": base64.b64encode(body).decode()},
            {"kind": "client_response", "headers": {"content-type": "application/json"},
             "body_base64": base64.b64encode(marker.encode()).decode()},
        ],
        "logs": [{"time": datetime.now(UTC).isoformat(), "level": "info", "message": f"handled {marker}",
                  "trace_id": trace_id}],
    }
    return trace, {"trace_id": trace_id, "body": body, "response": marker.encode(), "log": f"handled {marker}"}


class Clients:
    """N threads posting traces until the deadline; every outcome is recorded.

    With `batch`, each request is a batch of that many traces to `…/trace-batches`: acknowledged or refused as a
    whole, so every trace of it is checked as acknowledged or refused."""

    def __init__(self, world: World, gunicorn: Gunicorn, *, count: int, seconds: float, batch: int | None = None):
        self.world, self.gunicorn, self.count, self.seconds = world, gunicorn, count, seconds
        self.batch = batch
        self.acknowledged: list[dict] = []
        self.refused: list[dict] = []
        self.unexpected: Counter = Counter()
        self.latencies: list[float] = []
        self.lock = threading.Lock()

    def run(self) -> float:
        deadline = time.monotonic() + self.seconds
        threads = [threading.Thread(target=self._client, args=(number, deadline)) for number in range(self.count)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - started

    def _client(self, number: int, deadline: float) -> None:
        index = 0
        while time.monotonic() < deadline:
            session = self.world.sessions[(number + index) % len(self.world.sessions)]
            traces, expected = zip(*(_trace(index) for _ in range(self.batch or 1)), strict=True)
            endpoint = "trace-batches" if self.batch else "traces"
            status, latency = self._post(f"/api/us/v1/debugger/sessions/{session}/{endpoint}",
                                         {"traces": list(traces)})
            with self.lock:
                self.latencies.append(latency)
                if status == 202:
                    self.acknowledged.extend(expected)
                elif status == 503:
                    self.refused.extend(expected)
                else:
                    self.unexpected[status] += 1
            index += 1

    def _post(self, path: str, body: dict) -> tuple[int, float]:
        request = urllib.request.Request(  # noqa: S310 - loopback
            self.gunicorn.url + path, data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Bearer {self.world.token}", "Content-Type": "application/json"},
        )
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                status = response.status
                reply = json.loads(response.read())
                if status == 202 and reply.get("accepted") != len(body["traces"]):
                    status = -1  # acknowledged but not stored: would be a loss
        except urllib.error.HTTPError as error:
            status = error.code
            if status == 503 and not error.headers.get("Retry-After"):
                status = -503  # a refusal must tell the data plane when to retry
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            status = 0
        return status, (time.perf_counter() - started) * 1000


def _chaos(world: World, seconds: float, events: list[str]) -> threading.Thread:
    def run():
        time.sleep(seconds * 0.15)
        # As an operator would: if the outage interrupts the replacement, run the (resumable) command again.
        for attempt in range(1, 6):
            events.append(f"{time.strftime('%X')} rewrap to the new CMEK, attempt {attempt}")
            rewrap = subprocess.run(
                [sys.executable, "manage.py", "rewrap_data_keys", "--org", str(world.organization.pk), "--region",
                 "us", "--to-arn", world.new_arn, "--yes"],
                cwd=PROJECT_ROOT, env=world.env, capture_output=True, text=True, timeout=600,
            )
            world.rewrap_exit = rewrap.returncode
            tail = (rewrap.stdout + rewrap.stderr).strip().splitlines()[-3:]
            events.append(f"{time.strftime('%X')} rewrap exited {rewrap.returncode}: {' | '.join(tail)[:400]}")
            if rewrap.returncode == 0:
                return
            time.sleep(2)

    def outage():
        time.sleep(seconds * 0.6)
        world.kms.stop()
        events.append(f"{time.strftime('%X')} KMS server stopped")
        time.sleep(3)
        world.kms.start()
        events.append(f"{time.strftime('%X')} KMS server started again")

    world.rewrap_exit = None
    threads = [threading.Thread(target=run), threading.Thread(target=outage)]
    for thread in threads:
        thread.start()
    return threads


def _verify(world: World, clients: Clients) -> dict:
    """With KMS up and a cold cache: every acknowledged write is there and reveals as sent."""
    from debugger.models import PayloadCapture, RequestLog, Trace
    from encryption_keys import keyring
    from encryption_keys.models import DataKey

    keyring.reset_for_tests()
    acknowledged = {item["trace_id"]: item for item in clients.acknowledged}
    stored = {trace.trace_id: trace for trace in Trace.objects.filter(trace_id__in=list(acknowledged))}
    lost = [trace_id for trace_id in acknowledged if trace_id not in stored]
    mismatched = 0
    captures = PayloadCapture.objects.filter(trace__trace_id__in=list(stored)).select_related("trace")
    bodies = keyring.reveal_many(capture.body for capture in captures)
    for capture, revealed in zip(captures, bodies, strict=True):
        item = acknowledged[capture.trace.trace_id]
        expected = item["body"] if capture.kind == "client_request" else item["response"]
        if not revealed.ok or revealed.value != expected:
            mismatched += 1
    if captures.count() != 2 * len(stored):
        mismatched += abs(2 * len(stored) - captures.count())
    logs = list(RequestLog.objects.filter(trace_id__in=list(stored)))
    for log, revealed in zip(logs, keyring.reveal_many(log.message for log in logs), strict=True):
        if not revealed.ok or revealed.value != acknowledged[log.trace_id]["log"]:
            mismatched += 1
    refused_stored = Trace.objects.filter(trace_id__in=[item["trace_id"] for item in clients.refused]).count()
    under_old = DataKey.objects.filter(wrapping_key_ref=world.old_arn, shredded_at__isnull=True).count()
    return {"lost": len(lost), "mismatched": mismatched, "refused_stored": refused_stored,
            "deks_left_under_old_key": under_old, "logs_checked": len(logs), "payloads_checked": len(bodies)}


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def run(*, quick: bool, batch: int | None = None, name: str = "load") -> dict:
    seconds, clients_count, workers = (15, 4, 2) if quick else (45, 12, 4)
    with postgres_database(name) as database_url:
        world = World(quick=quick, database_url=database_url)
        try:
            world.seed()
            progress(f"load: gunicorn with {workers} workers, {clients_count} clients for {seconds} s")
            gunicorn = Gunicorn(world, workers=workers)
            events: list[str] = []
            try:
                clients = Clients(world, gunicorn, count=clients_count, seconds=seconds, batch=batch)
                chaos = _chaos(world, seconds, events)
                elapsed = clients.run()
                for thread in chaos:
                    thread.join(timeout=600)
            finally:
                gunicorn.stop()
            for event in events:
                progress(f"load: {event}")
            checks = _verify(world, clients)
        finally:
            world.close()
    latencies = clients.latencies or [0.0]
    unexpected = sum(clients.unexpected.values())
    nothing_lost = checks["lost"] == 0 and checks["mismatched"] == 0 and checks["refused_stored"] == 0
    per_request = f"batches of {batch} traces" if batch else "one trace per request"
    return {
        "name": name,
        "description": f"{clients_count} data-plane clients × {seconds} s against gunicorn ({workers} workers) on "
                       f"PostgreSQL, {per_request}, with a CMEK replacement and a KMS outage during the run",
        "events": events,
        "checks": checks,
        "unexpected_statuses": dict(clients.unexpected),
        "figures": [
            figure("acknowledged trace writes/s (each: spans + 2 payloads + 1 log, encrypted)",
                   len(clients.acknowledged) / elapsed, "writes/s", chart_group="Load: acknowledged writes per second"),
            figure("acknowledged writes", len(clients.acknowledged), "writes"),
            figure("refused writes (503 + Retry-After)", len(clients.refused), "writes"),
            figure("latency p50", _percentile(latencies, 50), "ms"),
            figure("latency p95", _percentile(latencies, 95), "ms"),
            figure("latency p99", _percentile(latencies, 99), "ms"),
            figure("acknowledged writes lost or not revealing as sent", checks["lost"] + checks["mismatched"],
                   "writes", target="0", met=checks["lost"] + checks["mismatched"] == 0),
            figure("refused writes that left rows behind", checks["refused_stored"], "writes", target="0",
                   met=checks["refused_stored"] == 0),
            figure("responses other than 202 / 503 + Retry-After", unexpected, "responses", target="0",
                   met=unexpected == 0),
            figure("data keys left under the replaced CMEK", checks["deks_left_under_old_key"], "keys", target="0",
                   met=checks["deks_left_under_old_key"] == 0 and world.rewrap_exit == 0),
        ],
        "nothing_lost": nothing_lost,
    }
