"""A local AWS KMS on loopback: moto's KMS plus the fidelity layer, over real HTTP/1.1 (``wsgi.py``).

    with LocalKmsServer(caller_principal="arn:aws:iam::111122223333:role/konnect") as kms:  # port 0: a free one
        arn = create_key(region="us-west-2", multi_region=True)
        boto3.client("kms", region_name="us-west-2", endpoint_url=kms.endpoint_url, ...)

Key state lives in moto's process-global backends, not in the server: ``stop()`` then ``start()``
keeps every key (and the port), and two servers in one process serve the same keys — which is how a
test simulates "KMS in region A is down, region B is up".

``caller_principal`` is whom every caller of this server stands for when key policies are evaluated (the
platform's role; see ``fidelity``); without it the caller stands for every AWS principal.

From a shell (or the ``kms_server`` management command, which passes ``PLATFORM_KMS_PRINCIPAL``)::

    python -m devtools.local_kms --port 4566 --create-platform-keys us=us-west-2+us-east-2,eu=eu-central-1 \
        --caller-principal arn:aws:iam::111122223333:role/konnect-admin-cmek
"""

from __future__ import annotations

import argparse
import functools
import http.client
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

from . import admin, fidelity
from .wsgi import KeepAliveServer

#: moto server internals ``LocalKmsServer`` relies on (checked by the fidelity guard test).
SERVER_SEAMS: tuple[fidelity.Seam, ...] = (
    fidelity.Seam("moto.moto_server.werkzeug_app.DomainDispatcherApplication.__init__", ("self", "create_app")),
    fidelity.Seam(
        "moto.moto_server.werkzeug_app.DomainDispatcherApplication.get_backend_for_host", ("self", "host")
    ),
    fidelity.Seam("moto.moto_server.werkzeug_app.create_backend_app", ("service",)),
    fidelity.Seam("moto.core.responses.method_names_from_class", ("clazz",)),
)


def _remember_method_names() -> None:
    """moto lists a response class's methods (``inspect.getmembers``) on every request to find the action;
    the list is the same for the server's whole life (the fidelity layer swaps methods, it adds none)."""
    from moto.core import responses

    if getattr(responses.method_names_from_class, "__konnect_remembered__", False):
        return
    names_of = functools.cache(responses.method_names_from_class)

    def method_names_from_class(clazz: object) -> list[str]:
        return list(names_of(clazz))

    method_names_from_class.__konnect_remembered__ = True  # type: ignore[attr-defined]
    responses.method_names_from_class = method_names_from_class


def _dispatcher() -> Any:
    """moto's WSGI application (host → service dispatcher), remembering each routing answer.

    moto 5.2.5 answers ``get_backend_for_host`` by listing its own package directory (one ``stat`` per
    installed service, every request): about a third of a KMS call's server time. The answer depends only on
    the host name and on which moto is installed, neither of which changes while the server runs; real KMS
    does not spend milliseconds routing a request, and the re-wrap benchmark should not measure moto doing so.
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    _remember_method_names()

    class RememberingDispatcher(DomainDispatcherApplication):
        def __init__(self) -> None:
            super().__init__(create_backend_app)
            self._backend_for_host: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            try:
                return self._backend_for_host[host]
            except KeyError:
                backend = self._backend_for_host[host] = super().get_backend_for_host(host)
                return backend

    return RememberingDispatcher()


def _delayed(app: Any, seconds: float) -> Any:
    """``app`` answering each KMS request ``seconds`` later: the network round trip to AWS KMS, which loopback
    lacks (benchmarks of concurrent calls need it; the wait holds no lock, as a network wait does not)."""
    if seconds <= 0:
        return app

    def application(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") == "POST":
            time.sleep(seconds)
        return app(environ, start_response)

    return application


def _acting_as(app: Any, principal: str | None) -> Any:
    """``app`` with every request evaluated for a caller that is ``principal`` (see ``fidelity.acting_as``)."""

    def application(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with fidelity.acting_as(principal):
            result = app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                getattr(result, "close", lambda: None)()

    return application


class LocalKmsServer:
    """moto's KMS (with ``fidelity.apply()``) served on ``host:port`` in a background thread."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, quiet: bool = True, caller_principal: str | None = None,
        latency: float = 0.0,
    ) -> None:
        self.host = host
        self.caller_principal = caller_principal or None
        self.latency = latency
        self._requested_port = port
        self._port: int | None = None
        self._quiet = quiet
        self._httpd: KeepAliveServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, *, timeout: float = 10.0) -> LocalKmsServer:
        """Apply the fidelity layer, start serving and wait until the server answers HTTP.

        Port 0 picks a free port on the first start; later starts reuse that port.
        """
        if self.running:
            return self
        fidelity.apply()
        port = self._port if self._port is not None else self._requested_port
        try:
            app = _delayed(_acting_as(_dispatcher(), self.caller_principal), self.latency)
            httpd = KeepAliveServer((self.host, port), app, verbose=not self._quiet)
        except OSError as exc:
            raise RuntimeError(f"local KMS could not listen on {self.host}:{port}: {exc}") from exc
        self._httpd = httpd
        self._port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"local-kms-{self._port}", daemon=True
        )
        self._thread.start()
        self._wait_until_answering(timeout)
        return self

    def stop(self) -> None:
        """Stop serving, end open keep-alive connections and release the port.

        Keys stay in moto's backends (process-global)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.close_connections()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LocalKmsServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the local KMS server has not been started yet")
        return self._port

    @property
    def endpoint_url(self) -> str:
        """``http://host:port`` — valid once started, and still the same after ``stop()``."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host  # noqa: S104 - a comparison
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def __repr__(self) -> str:
        where = self.endpoint_url if self._port is not None else f"{self.host}:{self._requested_port}"
        return f"<LocalKmsServer {where} {'running' if self.running else 'stopped'}>"

    def _wait_until_answering(self, timeout: float) -> None:
        host = self.endpoint_url.split("//", 1)[1].rsplit(":", 1)[0].strip("[]")
        deadline = time.monotonic() + timeout
        while True:
            connection = http.client.HTTPConnection(host, self.port, timeout=1)
            try:
                connection.request("GET", "/moto-api/lib.js")
                connection.getresponse().read()
                return
            except OSError as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"local KMS at {self.endpoint_url} did not answer: {exc}") from exc
                time.sleep(0.05)
            finally:
                connection.close()


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_platform_keys(spec: str) -> dict[str, list[str]]:
    """``"us=us-west-2+us-east-2,eu=eu-central-1"`` → ``{"us": ["us-west-2", "us-east-2"], "eu": [...]}``.

    The first region of a geo holds the (multi-Region) primary key; the others get replicas.
    """
    result: dict[str, list[str]] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        geo, sep, regions = item.partition("=")
        region_list = [r.strip() for r in regions.split("+") if r.strip()]
        if not sep or not geo.strip() or not region_list:
            raise ValueError(f"expected geo=region[+replica-region…], got {item!r}")
        result[geo.strip()] = region_list
    return result


def create_platform_keys(spec: str | dict[str, list[str]]) -> dict[str, str]:
    """Create one multi-Region platform key per Konnect geo (replicated to the extra regions).

    Returns ``{geo: primary ARN}``, the shape of the ``PLATFORM_KMS_KEYS`` setting.
    """
    geos = parse_platform_keys(spec) if isinstance(spec, str) else spec
    arns: dict[str, str] = {}
    for geo, (primary_region, *replica_regions) in geos.items():
        arn = admin.create_key(
            region=primary_region, description=f"Konnect platform key ({geo})", multi_region=True
        )
        for region in replica_regions:
            admin.replicate_key(arn, to_region=region)
        arns[geo] = arn
    return arns


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.local_kms",
        description="Run a local AWS KMS (moto + Konnect fidelity layer) on loopback until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4566, help="port (default 4566; 0 = any free port)")
    parser.add_argument(
        "--create-platform-keys",
        metavar="GEO=REGION[+REPLICA…],…",
        default="",
        help="create a multi-Region platform key per geo, e.g. us=us-west-2+us-east-2,eu=eu-central-1",
    )
    parser.add_argument(
        "--caller-principal",
        metavar="ARN",
        default="",
        help="the AWS principal callers stand for in key policies (the platform's role); default: every principal",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, metavar="MS",
                        help="answer each KMS request this much later, like a network round trip (default 0)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stop_event: threading.Event | None = None,
) -> int:
    """Start the server, create the requested keys, print the settings to use, block until
    SIGINT/SIGTERM (or ``stop_event`` is set, for callers running it in a thread)."""
    args = _parser().parse_args(list(argv) if argv is not None else None)
    out = stdout or sys.stdout
    try:
        platform_keys = parse_platform_keys(args.create_platform_keys)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop_event = stop_event or threading.Event()

    server = LocalKmsServer(
        host=args.host, port=args.port, quiet=not args.verbose, caller_principal=args.caller_principal,
        latency=args.latency_ms / 1000,
    )
    server.start()
    try:
        arns = create_platform_keys(platform_keys)
        print(f"Local KMS listening on {server.endpoint_url}", file=out)
        print(f"KMS_ENDPOINT_URL={server.endpoint_url}", file=out)
        for geo, arn in arns.items():
            print(f"platform key {geo}: {arn}", file=out)
        if arns:
            print("PLATFORM_KMS_KEYS=" + ",".join(f"{g}={a}" for g, a in arns.items()), file=out)
        out.flush()
        _install_signal_handlers(stop_event)
        while not stop_event.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _install_signal_handlers(stop_event: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop_event.set())


if __name__ == "__main__":
    raise SystemExit(main())
