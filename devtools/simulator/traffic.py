"""Realistic gateway traffic: what a Kong data plane would capture for one proxied request.

Spans follow Kong's tracing instrumentation (phases, router, plugins, balancer, upstream), headers carry
credentials masked the way the Debugger masks them (`Bearer ****`), bodies are JSON (one endpoint
serves a PNG, to show binary payloads), and each request writes a few log lines.
"""

from __future__ import annotations

import base64
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from devtools.simulator import bodies

KONG_VERSION = "3.9.1"
HOST = "api.acme.test"
_IDS = uuid.UUID("8f4e0d52-7a53-4b61-9f3c-2f2d6a1c9e10")


def entity_id(kind: str, name: str) -> str:
    """Stable ids, so a route or service can be filtered on across runs."""
    return str(uuid.uuid5(_IDS, f"{kind}:{name}"))


@dataclass(frozen=True)
class Endpoint:
    route: str
    service: str
    method: str
    path: str  # the route's path, {id} filled per request
    upstream: str
    plugins: tuple[str, ...]
    weight: int
    ok_status: int = 200


ENDPOINTS = (
    Endpoint("orders-create", "orders", "POST", "/orders", "orders.internal:8080",
             ("correlation-id", "key-auth", "rate-limiting", "request-transformer"), 3, 201),
    Endpoint("orders-get", "orders", "GET", "/orders/{id}", "orders.internal:8080",
             ("correlation-id", "key-auth", "rate-limiting"), 4),
    Endpoint("payments-capture", "payments", "POST", "/payments/{id}/capture", "payments.internal:9000",
             ("correlation-id", "key-auth", "rate-limiting"), 2),
    Endpoint("catalog-search", "catalog", "GET", "/products", "catalog.internal:8000",
             ("correlation-id", "rate-limiting"), 4),
    Endpoint("catalog-thumbnail", "catalog", "GET", "/products/{id}/thumbnail", "catalog.internal:8000",
             ("correlation-id",), 1),
    Endpoint("oauth-token", "auth", "POST", "/oauth/token", "auth.internal:7000", ("correlation-id",), 1),
)
CONSUMERS = ("alice", "bob", "checkout-web", "mobile-app")


@dataclass
class SimulatedRequest:
    endpoint: Endpoint
    trace_id: str
    start: datetime
    status: int
    consumer: str
    path: str
    kong_ms: float
    upstream_ms: float | None
    spans: list[dict] = field(default_factory=list)
    payloads: dict[str, dict] = field(default_factory=dict)
    logs: list[dict] = field(default_factory=list)
    client_ip: str = "203.0.113.7"

    @property
    def total_ms(self) -> float:
        return round(self.kong_ms + (self.upstream_ms or 0), 3)

    def facts(self) -> dict:
        """What a sampling rule can look at."""
        facts = {
            "http.method": self.endpoint.method, "http.path": self.path, "http.host": HOST, "http.scheme": "https",
            "net.src.ip": self.client_ip, "route.id": entity_id("route", self.endpoint.route),
            "route.name": self.endpoint.route, "service.id": entity_id("service", self.endpoint.service),
            "service.name": self.endpoint.service, "consumer.id": entity_id("consumer", self.consumer) if self.consumer else None,
            "consumer.username": self.consumer or None, "http.response.status_code": self.status,
            "latency.total_ms": int(self.total_ms), "latency.kong_ms": int(self.kong_ms),
            "latency.upstream_ms": int(self.upstream_ms) if self.upstream_ms is not None else None,
        }
        for name, value in self.payloads.get("client_request", {}).get("headers", {}).items():
            facts[f"http.request.header.{name.replace('-', '_')}"] = value
            facts[f"http.request.header.{name}"] = value
        return facts

    def trace_json(self, capture: dict) -> dict:
        """The trace as the ingest API takes it, with only what the session captures."""
        payloads = []
        for kind, payload in self.payloads.items():
            side = "request" if kind.endswith("_request") else "response"
            item = {"kind": kind}
            if "url" in payload:
                item["url"] = payload["url"]
            if capture.get(f"{side}_headers"):
                item["headers"] = payload["headers"]
            if capture.get(f"{side}_body") and payload.get("body") is not None:
                item["body_base64"] = base64.b64encode(payload["body"]).decode("ascii")
            payloads.append(item)
        return {
            "trace_id": self.trace_id, "start_time": self.start.isoformat(), "method": self.endpoint.method,
            "status_code": self.status,
            "latency": {"total_ms": self.total_ms, "kong_ms": self.kong_ms, "upstream_ms": self.upstream_ms},
            "route_id": entity_id("route", self.endpoint.route), "service_id": entity_id("service", self.endpoint.service),
            "consumer_id": entity_id("consumer", self.consumer) if self.consumer else "",
            "spans": self.spans, "payloads": payloads, "logs": self.logs if capture.get("logs") else [],
        }


class TrafficGenerator:
    def __init__(self, seed: int | None = None):
        self.random = random.Random(seed)  # noqa: S311 - fake traffic, not security

    def hex_id(self, digits: int) -> str:
        return f"{self.random.getrandbits(digits * 4):0{digits}x}"

    def request(self) -> SimulatedRequest:
        rnd = self.random
        endpoint = rnd.choices(ENDPOINTS, weights=[e.weight for e in ENDPOINTS])[0]
        needs_key = "key-auth" in endpoint.plugins
        outcome = rnd.choices(["ok", "unauthorized", "rate_limited", "not_found", "bad_gateway", "unavailable"],
                              weights=[80, 6 if needs_key else 0, 5, 3, 3, 3])[0]
        status = {"ok": endpoint.ok_status, "unauthorized": 401, "rate_limited": 429, "not_found": 404,
                  "bad_gateway": 502, "unavailable": 503}[outcome]
        proxied = outcome not in ("unauthorized", "rate_limited")
        request = SimulatedRequest(
            endpoint=endpoint, trace_id=self.hex_id(32), start=datetime.now(UTC), status=status,
            consumer="" if outcome == "unauthorized" or not needs_key else rnd.choice(CONSUMERS),
            path=endpoint.path.replace("{id}", f"{rnd.randint(10_000, 99_999)}"),
            kong_ms=round(rnd.uniform(0.6, 3.5) + 0.4 * len(endpoint.plugins), 3),
            upstream_ms=round(rnd.lognormvariate(3.5, 0.6), 3) if proxied and outcome != "bad_gateway" else (
                round(rnd.uniform(0.5, 3), 3) if outcome == "bad_gateway" else None),
            client_ip=f"203.0.113.{rnd.randint(2, 250)}",
        )
        request.spans = self._spans(request, outcome)
        request.payloads = bodies.payloads(request, outcome, rnd, kong_version=KONG_VERSION, host=HOST)
        request.logs = self._logs(request, outcome)
        return request

    # --- spans -----------------------------------------------------------------------------------------

    def _spans(self, request: SimulatedRequest, outcome: str) -> list[dict]:
        rnd, t0 = self.random, int(request.start.timestamp() * 1e9)
        spans: list[dict] = []
        cursor = [t0]

        def span(name, duration_ms, parent=None, advance=True, **attributes):
            start = cursor[0]
            end = start + int(duration_ms * 1e6)
            record = {"span_id": self.hex_id(16), "parent_span_id": parent, "name": name,
                      "start_time_unix_nano": start, "end_time_unix_nano": end, "attributes": attributes}
            spans.append(record)
            if advance:
                cursor[0] = end
            return record

        endpoint = request.endpoint
        root = span("kong", request.total_ms, advance=False, **{
            "http.method": endpoint.method, "http.route": endpoint.path, "http.flavor": "1.1", "http.scheme": "https",
            "http.host": HOST, "http.url": f"https://{HOST}{request.path}", "http.client_ip": request.client_ip,
            "net.peer.ip": request.client_ip, "http.status_code": request.status, "kong.request.id": self.hex_id(32),
        })
        root_id = root["span_id"]
        budget = request.kong_ms  # Kong's own time, shared out between phases
        if rnd.random() < 0.3:
            span("kong.phase.certificate", budget * 0.08, root_id, **{"tls.server.name": HOST})
        rewrite = span("kong.phase.rewrite", budget * 0.04, root_id, advance=False)
        span("kong.rewrite.plugin.correlation-id", budget * 0.03, rewrite["span_id"], **{"kong.plugin.name": "correlation-id"})
        cursor[0] = rewrite["end_time_unix_nano"]
        span("kong.router", budget * 0.06, root_id, **{"kong.route.name": endpoint.route})
        access = span("kong.phase.access", budget * 0.45, root_id, advance=False)
        for plugin in [p for p in endpoint.plugins if p != "correlation-id"]:
            span(f"kong.access.plugin.{plugin}", budget * 0.4 / max(len(endpoint.plugins) - 1, 1), access["span_id"],
                 **{"kong.plugin.name": plugin, "kong.plugin.id": entity_id("plugin", plugin)})
            if outcome == "unauthorized" and plugin == "key-auth" or outcome == "rate_limited" and plugin == "rate-limiting":
                break
        cursor[0] = access["end_time_unix_nano"]
        if request.upstream_ms is not None:
            host, port = endpoint.upstream.split(":")
            span("kong.dns", budget * 0.05, root_id, **{"dns.record.domain": host, "dns.record.ip": "10.0.3.17"})
            balancer = span("kong.balancer", request.upstream_ms, root_id, advance=False,
                            **{"net.peer.name": host, "net.peer.port": int(port), "try_count": 1})
            span("kong.upstream.try_select", 0.05, balancer["span_id"], **{"upstream.address": f"10.0.3.17:{port}"})
            if outcome != "bad_gateway":
                ttfb = request.upstream_ms * rnd.uniform(0.7, 0.95)
                span("kong.upstream.ttfb", ttfb, balancer["span_id"])
                span("kong.upstream.read_response", request.upstream_ms - ttfb - 0.05, balancer["span_id"])
            cursor[0] = balancer["end_time_unix_nano"]
        header_filter = span("kong.phase.header_filter", budget * 0.1, root_id, advance=False)
        span("kong.header_filter.plugin.correlation-id", budget * 0.05, header_filter["span_id"],
             **{"kong.plugin.name": "correlation-id"})
        cursor[0] = header_filter["end_time_unix_nano"]
        span("kong.phase.body_filter", budget * 0.08, root_id)
        log = span("kong.phase.log", budget * 0.1, root_id, advance=False)
        span("kong.log.plugin.http-log", budget * 0.08, log["span_id"], **{"kong.plugin.name": "http-log"})
        return spans

    # --- logs ------------------------------------------------------------------------------------------

    def _logs(self, request: SimulatedRequest, outcome: str) -> list[dict]:
        span_of = {span["name"]: span["span_id"] for span in request.spans}
        endpoint, when = request.endpoint, request.start.isoformat()
        lines = [("debug", "kong.router",
                  f"[kong] router.lua:1023 route matched: {endpoint.route} ({endpoint.method} {endpoint.path})")]
        if "key-auth" in endpoint.plugins:
            lines.append(("warn", "kong.access.plugin.key-auth", "[key-auth] no API key found in request")
                         if outcome == "unauthorized" else
                         ("info", "kong.access.plugin.key-auth", f"[key-auth] authenticated consumer '{request.consumer}'"))
        if outcome == "rate_limited":
            lines.append(("warn", "kong.access.plugin.rate-limiting",
                          f"[rate-limiting] API rate limit exceeded for consumer '{request.consumer or 'anonymous'}'"))
        elif "rate-limiting" in endpoint.plugins:
            lines.append(("notice", "kong.access.plugin.rate-limiting",
                          f"[rate-limiting] {self.random.randint(1, 59)} of 60 requests left this minute"))
        if outcome == "bad_gateway":
            lines.append(("error", "kong.balancer", "connect() failed (111: Connection refused) while connecting to "
                          f'upstream, upstream: "http://10.0.3.17:{endpoint.upstream.split(":")[1]}{request.path}"'))
        elif outcome == "unavailable":
            lines.append(("warn", "kong.balancer", "[balancer] upstream responded 503 Service Unavailable; "
                          "not retrying (non-idempotent or retries exhausted)"))
        lines.append(("info", "kong.log.plugin.http-log", "[http-log] queued 1 log entry for https://logs.acme.test/kong"))
        return [{"time": when, "level": level, "message": message, "span_id": span_of.get(span_name)}
                for level, span_name, message in lines]
