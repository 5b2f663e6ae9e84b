"""Debugger: ingest throughput over real HTTP and session-page render time, encrypted vs plaintext.

One run, one process: the app (Django + django-ninja, unchanged) is served by a threaded WSGI server
(werkzeug) on loopback, over a fresh SQLite database, with the local KMS server in the same process.
A client posts traces exactly as a data plane does (`devtools.simulator`: one Kong trace per request,
~18 spans, four payload captures with headers and JSON bodies, ~4 log lines), and reads the session page
(50 traces with their decrypted request-path previews) as a browser does, with a session cookie.

The plaintext baseline is the same path with the storage swapped: twins of PayloadCapture and RequestLog
whose url/headers/body/message are plain TextField/JSONField/BinaryField columns, registered by this
benchmark only (tables created with the schema editor, no migration). Their endpoints run the very same
code — `debugger.ingest.traces_ingest` with `store=` the twins, `debugger.views.session_detail` with
`store=` the twins — behind the same authentication, body limit, pydantic schemas and templates. So the
ratio measures what encryption adds on the real path: DEK leases, AES-GCM sealing, ciphertext bytes in
the database, and on reads `reveal_many` (a KMS Decrypt whenever the DEK is not cached).

Ingest: contenders alternate batch by batch within each round (`bench.measure_rounds`). Pages: the four
contenders take turns call by call within each round, each page timed alone, and a contender's figure for the
round is its median page (`bench.measure_interleaved`): a page takes tens of milliseconds, so a one-second batch
held about ten of them and a neighbour's burst of CPU on this shared machine landed whole on one contender's
batch (per-round ratios ranged 0.6-2.9x); taken in turns, a burst touches a page or two of each and moves no
median. The garbage collector runs between rounds, not during them. Every ratio is the median of per-round
ratios, both sides measured alike.

The minimal page is the floor: the same 50 rows with every field a row of the session page shows (the trace
link and start time, method, request path, status, the three latencies, route and service — name as stored
with the trace, else id — and the payload count) read in one SQL query (subqueries for the path and the count),
its values formatted in the view as the page's rows are (`TraceRow`), and written by a plain template,
behind the same middleware and login; no page header, filters, session facts or pagination. Its path comes from
the plaintext twin, so it decrypts nothing.

"Cold" clears this process's DEK cache before each page, so each cold page pays one KMS Decrypt over
HTTP to the local KMS; "warm" keeps the cache, as a server does within the revocation bound
(DATAKEY_CACHE_TTL, 60 s: a warm run longer than that re-unwraps once a minute, as production would; the
median page does not show that rare page, which the cold contender measures).
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

from bench import Contender, figure, measure_interleaved, measure_rounds, median_rate, median_ratio, progress

NAME = "debugger"
FULL = {"rounds": 15, "batch_seconds": 1.0}
QUICK = {"rounds": 2, "batch_seconds": 0.2}
FULL_PAGES = {"rounds": 21, "calls": 15}  # pages of each contender per round, taken in turns
QUICK_PAGES = {"rounds": 2, "calls": 3}
PAGE_TRACES = 50
WARM_UP = 10  # calls of each contender before timing, so batch sizes are calibrated on the steady state
TARGET_INGEST = 0.85
TARGET_WARM_PAGE = 1.1
TARGET_WARM_MINIMAL = 2.0
INGEST_CHART = "Debugger ingest over HTTP: traces per second (one trace per request)"
PAGE_CHART = "Debugger session page, 50 traces: pages per second"


def run(*, quick: bool) -> dict:
    params = {"ingest": QUICK if quick else FULL, "pages": QUICK_PAGES if quick else FULL_PAGES}
    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="bench-debugger-"))
    app = _App(workdir)
    try:
        result = _measure(app, params)
        result["parameters"]["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        result["parameters"]["cpus"] = os.cpu_count()
        return result
    finally:
        app.close()


def _measure(app: _App, params: dict) -> dict:
    progress("debugger: warming up (first data keys, imports, template and query caches)")
    for _ in range(WARM_UP):
        app.post_trace(app.encrypted)
        app.post_trace(app.plaintext)
    progress("debugger: ingest — encrypted vs plaintext twin, alternating rounds")
    ingest = measure_rounds([
        Contender("encrypted", "encrypted (PayloadCapture, RequestLog)", lambda: app.post_trace(app.encrypted)),
        Contender("plaintext", "plaintext twins", lambda: app.post_trace(app.plaintext)),
    ], **params["ingest"])
    app.check_storage()
    app.prepare_pages()
    for _ in range(WARM_UP):
        app.get_page(app.encrypted)
        app.get_page(app.plaintext)
    for _ in range(WARM_UP):
        app.get_minimal()
    progress("debugger: session page with 50 traces — minimal, plaintext, encrypted warm, encrypted cold")
    pages = measure_interleaved([
        Contender("minimal", "minimal page: the 50 rows from one query", app.get_minimal),
        Contender("plaintext", "plaintext twins", lambda: app.get_page(app.plaintext)),
        Contender("warm", "encrypted, warm DEK cache", lambda: app.get_page(app.encrypted)),
        Contender("cold", "encrypted, cold DEK cache", lambda: app.get_page(app.encrypted, cold=True)),
    ], **params["pages"])
    decrypts_per_cold_page = app.decrypts_per_cold_page()
    if decrypts_per_cold_page != 1:
        raise RuntimeError(f"a cold page made {decrypts_per_cold_page} KMS Decrypt calls, expected exactly 1")
    ingest_ratio = median_ratio(ingest, "encrypted", "plaintext")
    warm_ratio = median_ratio(pages, "plaintext", "warm")  # time ratio = inverse rate ratio
    cold_ratio = median_ratio(pages, "plaintext", "cold")
    minimal_ratio = median_ratio(pages, "minimal", "warm")
    return {
        "name": NAME,
        "description": "Debugger ingest and session page over HTTP, encrypted fields vs plaintext twins",
        "figures": [
            figure("Ingest, encrypted: traces/s", median_rate(ingest, "encrypted"), "traces/s", chart_group=INGEST_CHART),
            figure("Ingest, plaintext twins: traces/s", median_rate(ingest, "plaintext"), "traces/s",
                   chart_group=INGEST_CHART),
            figure("Encrypted ingest ÷ plaintext ingest", ingest_ratio, "×", target=f"≥ {TARGET_INGEST}×",
                   met=ingest_ratio >= TARGET_INGEST),
            figure("Session page, plaintext twins", 1000 / median_rate(pages, "plaintext"), "ms"),
            figure("Session page, encrypted, warm cache", 1000 / median_rate(pages, "warm"), "ms"),
            figure("Session page, encrypted, cold cache", 1000 / median_rate(pages, "cold"), "ms"),
            figure("Warm encrypted page ÷ plaintext page (time)", warm_ratio, "×", target=f"≤ {TARGET_WARM_PAGE}×",
                   met=warm_ratio <= TARGET_WARM_PAGE),
            figure("Cold encrypted page ÷ plaintext page (time)", cold_ratio, "×"),
            figure("Session page, minimal (50 rows, one query)", 1000 / median_rate(pages, "minimal"), "ms"),
            figure("Warm encrypted page ÷ minimal page (time)", minimal_ratio, "×",
                   target=f"≤ {TARGET_WARM_MINIMAL}×", met=minimal_ratio <= TARGET_WARM_MINIMAL),
            *[figure(f"Session page, {label}: pages/s", median_rate(pages, key), "pages/s", chart_group=PAGE_CHART)
              for key, label in (("plaintext", "plaintext"), ("warm", "encrypted warm"), ("cold", "encrypted cold"))],
        ],
        "parameters": {**params, "page_traces": PAGE_TRACES, "database": "SQLite (temporary file)",
                       "server": "werkzeug threaded WSGI on 127.0.0.1", "datakey_cache_ttl_s": app.cache_ttl},
        "checks": {"kms_decrypts_per_cold_page": decrypts_per_cold_page, **app.storage_checks},
        "notes": [
            "Plaintext baseline: PayloadCapture/RequestLog twins with plain columns, same ingest and view code "
            "(store= argument), same HTTP stack; see the module docstring.",
            "Each request opens a new TCP connection (werkzeug closes after every response), for both contenders.",
            f"Per-round ingest ratio range {_spread(ingest, 'encrypted', 'plaintext')}; "
            f"warm page time ratio range {_spread(pages, 'plaintext', 'warm')}; "
            f"warm ÷ minimal range {_spread(pages, 'minimal', 'warm')}.",
            "Minimal page: the same 50 rows with every field the session page's rows show, from one SQL query, "
            "written by a plain template behind the same middleware and login; the floor of any page of those rows.",
        ],
        "samples": {"ingest": ingest, "pages": pages},
    }


def _spread(samples, numerator, denominator) -> str:
    ratios = [row[numerator] / row[denominator] for row in samples]
    return f"{min(ratios):.2f}–{max(ratios):.2f}×"


class _App:
    """The application, served over loopback HTTP, with one encrypted and one plaintext debug session."""

    def __init__(self, workdir: Path):
        os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"  # DEBUG off, the local KMS, no HTTPS redirect
        os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        from devtools.local_kms import LocalKmsServer, create_platform_keys
        from encryption_keys.providers.aws import kms

        self.kms = LocalKmsServer().start()
        settings.KMS_ENDPOINT_URL = self.kms.endpoint_url
        settings.PLATFORM_KMS_KEYS = create_platform_keys("us=us-west-2")
        kms.reset_clients()
        self.cache_ttl = settings.DATAKEY_CACHE_TTL
        call_command("migrate", verbosity=0, interactive=False)
        self.store = _plaintext_store()
        settings.ROOT_URLCONF = _urlconf(self.store)
        self._build_data()
        self.server = _serve()
        self.host, self.port = self.server.server_address[:2]
        self.storage_checks = {}

    def _build_data(self) -> None:
        from django.test import Client
        from django.utils import timezone

        from debugger.models import DebugSession
        from devtools.simulator.traffic import TrafficGenerator
        from konnect_admin import services, tokens
        from konnect_admin.models import User

        admin = User.objects.create_user(email="bench@acme.test", password=secrets.token_urlsafe())
        organization = services.organization_create(name="Bench", actor=None)
        services.member_add(organization=organization, user=admin, actor=None, team="Organization Admin")
        control_plane = services.control_plane_create(organization=organization, actor=admin, name="bench",
                                                      region="us")
        _token, self.token = tokens.data_plane_token_create(actor=admin, control_plane=control_plane, name="bench")
        later = timezone.now() + timedelta(days=1)
        sessions = [
            DebugSession.objects.create(control_plane=control_plane, name=name, duration_seconds=1800,
                                        max_samples=10**9, ends_at=later, retain_until=later, created_by=admin)
            for name in ("encrypted", "plaintext")
        ]
        self.encrypted = {"session": sessions[0], "traces": "/api/us/v1/debugger", "page": ""}
        self.plaintext = {"session": sessions[1], "traces": "/api/us/v1-plaintext-twin/debugger", "page": "/plain"}
        for variant in (self.encrypted, self.plaintext):
            session = variant["session"]
            variant["traces"] += f"/sessions/{session.pk}/traces"
            variant["page"] += f"/control-planes/{control_plane.pk}/debugger/{session.pk}/"
        self.minimal = f"/minimal/{sessions[1].pk}/"
        capture = {key: True for key in ("logs", "request_headers", "request_body", "response_headers",
                                         "response_body")}
        generator = TrafficGenerator(seed=1)
        self.template = json.dumps({"traces": [generator.request().trace_json(capture)]}).encode()
        self.template_id = json.loads(self.template)["traces"][0]["trace_id"].encode()
        client = Client()
        client.force_login(admin)
        self.cookie = f"sessionid={client.cookies['sessionid'].value}"
        self.page_store = {}

    # --- requests ------------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> bytes:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            content = response.read()
            if response.status >= 300:
                raise RuntimeError(f"{method} {path} answered {response.status}: {content[:300]!r}")
            return content
        finally:
            connection.close()

    def post_trace(self, variant: dict) -> None:
        body = self.template.replace(self.template_id, uuid.uuid4().hex.encode())
        answer = json.loads(self.request("POST", variant["traces"], body, {
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}))
        if answer["accepted"] != 1:
            raise RuntimeError(f"trace not accepted: {answer}")

    def get_minimal(self) -> None:
        page = self.request("GET", self.minimal, headers={"Cookie": self.cookie})
        if page.count(b"<code>/") != PAGE_TRACES:
            raise RuntimeError("the minimal page does not show 50 path previews")

    def get_page(self, variant: dict, *, cold: bool = False) -> None:
        if cold:
            from encryption_keys import keyring

            keyring.data_key_cache().clear()
        page = self.request("GET", variant["page"], headers={"Cookie": self.cookie})
        if page.count(b"<code>/") != PAGE_TRACES:
            raise RuntimeError("the session page does not show 50 decrypted path previews")

    # --- checks ----------------------------------------------------------------------------------------

    def check_storage(self) -> None:
        """The encrypted rows hold v2 envelopes, the twins plaintext; both sessions got every trace."""
        from django.db import connection

        from debugger.models import Trace

        with connection.cursor() as cursor:
            cursor.execute("SELECT body FROM debugger_payloadcapture WHERE body IS NOT NULL LIMIT 50")
            sealed = [bytes(row[0]) for row in cursor.fetchall()]
            table = connection.ops.quote_name(self.store.payload_model._meta.db_table)
            cursor.execute(f"SELECT body FROM {table} WHERE body IS NOT NULL LIMIT 50")  # noqa: S608 - our table
            plain = [bytes(row[0]) for row in cursor.fetchall()]
        if not sealed or not all(value[0] == 2 for value in sealed) or not plain:
            raise RuntimeError("the encrypted contender did not store envelopes")
        if not any(value.startswith((b"{", b"\x89PNG", b"grant_type")) for value in plain):
            raise RuntimeError("the plaintext twin did not store plaintext")
        self.storage_checks = {
            f"traces_{name}": Trace.objects.filter(session=variant["session"]).count()
            for name, variant in (("encrypted", self.encrypted), ("plaintext", self.plaintext))
        }

    def prepare_pages(self) -> None:
        """Both sessions get the same number of traces (≥ 50, all with payloads): the pages differ only in storage."""
        target = max(PAGE_TRACES, *self.storage_checks.values())
        for variant in (self.encrypted, self.plaintext):
            for _ in range(target - self.storage_checks[f"traces_{self._name(variant)}"]):
                self.post_trace(variant)
        self.storage_checks["traces_per_session_for_pages"] = target

    def _name(self, variant: dict) -> str:
        return "encrypted" if variant is self.encrypted else "plaintext"

    def decrypts_per_cold_page(self) -> int:
        from encryption_keys import call_log
        from encryption_keys.models import KmsCall

        decrypts = KmsCall.objects.filter(operation="Decrypt")
        time.sleep(0.5)  # let the server thread finish writing the call log of the last timed request
        call_log.flush()
        before = decrypts.count()
        self.get_page(self.encrypted, cold=True)
        time.sleep(0.5)  # the server flushes its call log after the response is sent
        call_log.flush()
        return decrypts.count() - before

    def close(self) -> None:
        self.server.shutdown()
        self.kms.stop()


def _serve():
    from django.core.wsgi import get_wsgi_application
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, get_wsgi_application(), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True, name="bench-wsgi").start()
    return server


def _plaintext_store():
    """Twins of PayloadCapture and RequestLog with plain columns (bench/twins.py), created for this process."""
    from bench import twins

    twins.create_tables()
    return twins.STORE


def _urlconf(store) -> str:
    """The app's URLs plus the twins' ingest endpoint and session page, under /plain/."""
    import sys
    import types
    from uuid import UUID

    from django.urls import include, path
    from ninja import Router, Status

    import konnect_admin.urls  # noqa: F401 - registers the konnect_region path converter
    from debugger import ingest, views
    from debugger.api import INGEST_MAX_BODY_BYTES, DataPlaneIngestAuth, _result_out, ingest_problems
    from debugger.schemas import IngestOut, TracesIn
    from konnect_admin.api import make_api

    router = Router(auth=DataPlaneIngestAuth(max_body_bytes=INGEST_MAX_BODY_BYTES))

    @router.post("/sessions/{session_id}/traces", response={202: IngestOut})
    @ingest_problems
    def post_traces(request, session_id: UUID, payload: TracesIn):  # debugger.api.post_traces, with the twins
        result = ingest.traces_ingest(control_plane=request.control_plane, session_id=session_id,
                                      traces=payload.traces, store=store)
        return Status(202, _result_out(result))

    api = make_api(title="bench plaintext twin", version="0", namespace="bench-plain",
                   url_version="v1-plaintext-twin")
    api.add_router("/debugger", router)
    module = types.ModuleType("bench_debugger_urls")
    module.urlpatterns = [
        path("api/<konnect_region:region>/v1-plaintext-twin/", api.urls),  # under /api/: bearer auth, no login
        path("plain/control-planes/<uuid:cp>/debugger/<uuid:pk>/", views.session_detail, {"store": store}),
        path("minimal/<uuid:pk>/", _minimal_view(store)),
        path("", include("konnect_admin.urls")),
    ]
    sys.modules[module.__name__] = module
    return module.__name__


def _minimal_view(store):
    """The floor for the session page: its 50 rows, with every field they show, from one query; a plain template."""
    from django.db.models import Count, OuterRef, Subquery
    from django.db.models.functions import Coalesce
    from django.http import HttpResponse
    from django.template import engines
    from django.utils import timezone

    from debugger.models import Trace
    from debugger.panels import path_preview

    template = engines["django"].from_string(  # values formatted in the view, as TraceRow does for the page
        "<!doctype html><title>Traces</title><table>{% for t in traces %}<tr>"
        "<td><a id='trace-{{ t.trace_id }}' href='traces/{{ t.trace_id }}/'><time datetime='{{ t.start_iso }}'>"
        "{{ t.start_clock }}</time></a></td><td>{{ t.method }}</td><td><code>{{ t.path }}</code></td>"
        "<td>{{ t.status_code }}</td><td>{{ t.latency }}</td><td>{{ t.route }}</td><td>{{ t.service }}</td>"
        "<td>{{ t.payload_count }}</td></tr>{% endfor %}</table>")
    captures = store.payload_model.objects.filter(trace=OuterRef("pk"))
    url = captures.filter(kind="client_request").values("url")[:1]
    payloads = captures.order_by().values("trace").annotate(n=Count("id")).values("n")

    def minimal(request, pk):
        traces = list(Trace.objects.filter(session_id=pk).annotate(
            url=Subquery(url), payload_count=Coalesce(Subquery(payloads), 0),
        ).order_by("-start_time", "-id")[:PAGE_TRACES])
        for trace in traces:
            trace.path = path_preview(trace.url)
            start = timezone.localtime(trace.start_time)
            trace.start_iso, trace.start_clock = start.isoformat(), start.strftime("%H:%M:%S.%f")[:12]
            trace.latency = " · ".join(f"{ms:.1f}" if ms is not None else "" for ms in (
                trace.latency_total_ms, trace.latency_kong_ms, trace.latency_upstream_ms))
            trace.route = trace.route_name or trace.route_id
            trace.service = trace.service_name or trace.service_id
        return HttpResponse(template.render({"traces": traces}, request))

    return minimal
