"""The data-plane side of the ingest API: fetch sessions, sample generated requests, post traces, finish.

Talks HTTP — to a real server (`HttpTransport`) or through Django's test client in this process
(`InProcessTransport`, so the demo needs no server). Either way the ingest API does all the writing.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from debugger.sampling import rule_matches
from devtools.simulator.traffic import TrafficGenerator

MAX_ATTEMPTS = 3
MAX_RETRY_WAIT_SECONDS = 10


class SimulationError(Exception):
    pass


@dataclass
class Response:
    status: int
    body: dict
    headers: dict


class HttpTransport:
    """Real HTTP to a running Konnect Admin (`--url http://127.0.0.1:8000`)."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30):
        self.base_url, self.token, self.timeout = base_url.rstrip("/"), token, timeout

    def send(self, method: str, path: str, body: dict | None = None) -> Response:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the operator gives the URL
            self.base_url + path, data=data, method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
                     "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                return Response(answer.status, _json(answer.read()), dict(answer.headers))
        except urllib.error.HTTPError as error:
            return Response(error.code, _json(error.read()), dict(error.headers))
        except urllib.error.URLError as error:
            raise SimulationError(f"cannot reach {self.base_url}: {error.reason}") from None


class InProcessTransport:
    """Requests through Django's test client: the full middleware and API stack, no network."""

    def __init__(self, token: str, *, host: str = "testserver"):
        from django.test import Client

        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", SERVER_NAME=host)

    def send(self, method: str, path: str, body: dict | None = None) -> Response:
        if method == "GET":
            answer = self.client.get(path)
        else:
            answer = self.client.generic(method, path, json.dumps(body or {}), content_type="application/json")
        return Response(answer.status_code, _json(answer.content), dict(answer.headers))


def _json(content: bytes) -> dict:
    try:
        value = json.loads(content or b"{}")
    except ValueError:
        return {"detail": content[:200].decode("utf-8", "replace")}
    return value if isinstance(value, dict) else {"data": value}


@dataclass
class SimulationReport:
    requests: int = 0
    sampled: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    closed: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)

    @property
    def total_sampled(self) -> int:
        return sum(self.sampled.values())


class DataPlane:
    def __init__(self, transport, *, region: str, seed: int | None = None, sleep: Callable[[float], None] = time.sleep):
        self.transport, self.prefix = transport, f"/api/{region}/v1/debugger"
        self.generator = TrafficGenerator(seed)
        self.sleep = sleep

    def send(self, method: str, path: str, body: dict | None = None, report: SimulationReport | None = None) -> Response:
        """One call, retried after Retry-After while the server answers 503 (no data key right now)."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            response = self.transport.send(method, self.prefix + path, body)
            if response.status != 503 or attempt == MAX_ATTEMPTS:
                return response
            if report is not None:
                report.retries += 1
            self.sleep(min(float(response.headers.get("Retry-After", 1)), MAX_RETRY_WAIT_SECONDS))
        raise AssertionError("unreachable")

    def active_sessions(self, session_id: str | None = None) -> list[dict]:
        response = self.send("GET", "/sessions")
        if response.status != 200:
            raise SimulationError(f"fetching debug sessions failed ({response.status}): {_detail(response)}")
        sessions = response.body["data"]
        if session_id is not None:
            sessions = [session for session in sessions if session["id"] == str(session_id)]
            if not sessions:
                raise SimulationError(f"debug session {session_id} is not active on this control plane")
        if not sessions:
            raise SimulationError("no active debug session on this control plane: start one on the control "
                                  "plane's Debugger page first")
        return sessions

    def run(self, *, requests: int, session_id: str | None = None, finish: bool = False,
            progress: Callable[[int, int, int], None] = lambda done, total, sampled: None) -> SimulationReport:
        sessions = self.active_sessions(session_id)
        report = SimulationReport(sampled={session["id"]: 0 for session in sessions})
        remaining = {session["id"]: session["remaining_samples"] for session in sessions}
        for index in range(requests):
            request = self.generator.request()
            for session in sessions:
                rule = session["sampling"]
                if session["id"] in report.closed or remaining[session["id"]] <= 0:
                    continue
                if not rule_matches(rule["kind"], rule["value"], request.facts()):
                    continue
                self._post_trace(session, request, report, remaining)
            report.requests = index + 1
            progress(index + 1, requests, report.total_sampled)
        if finish:
            for session in sessions:
                response = self.send("POST", f"/sessions/{session['id']}/done", {})
                if response.status == 200:
                    report.finished.append(session["id"])
        return report

    def _post_trace(self, session: dict, request, report: SimulationReport, remaining: dict) -> None:
        body = {"traces": [request.trace_json(session["capture"])]}
        response = self.send("POST", f"/sessions/{session['id']}/traces", body, report)
        if response.status == 409:
            report.closed.append(session["id"])
            return
        if response.status != 202:
            raise SimulationError(f"posting a trace failed ({response.status}): {_detail(response)}")
        report.sampled[session["id"]] += response.body["accepted"]
        remaining[session["id"]] = response.body["session"]["remaining_samples"]


def _detail(response: Response) -> str:
    detail = response.body.get("detail", "")
    problems = response.body.get("invalid_parameters") or []
    return "; ".join([detail, *(f"{p.get('field')}: {p.get('reason')}" for p in problems)])
