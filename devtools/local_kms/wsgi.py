"""The local KMS's HTTP/1.1 front: keep-alive connections, like the real KMS endpoint.

moto's own server (werkzeug's development server) closes the connection after every response, so
each KMS call costs the client a TCP connect and the server a new thread; it then waits up to 10 ms
on each socket for a body nobody sends. AWS KMS keeps connections alive and botocore pools them, so
the application's KMS traffic looks here the way it looks in production.

Stopping the server also closes the connections it still holds: a stopped local KMS refuses every
call (connection reset, then connection refused), which the outage and failover tests depend on.

Only what the AWS SDKs send is supported: requests with a ``Content-Length`` body (or none).
"""

from __future__ import annotations

import io
import logging
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Bodies larger than this are refused (KMS itself caps plaintext at 4 KiB; requests stay far below).
MAX_BODY_BYTES = 1024 * 1024


class KeepAliveHandler(BaseHTTPRequestHandler):
    """One connection: reads requests until the client (or ``KeepAliveServer.close_connections``) ends it."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes; no 40 ms delayed-ACK stall
    server_version = "konnect-local-kms"
    sys_version = ""
    server: KeepAliveServer

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client, or stop(), went away mid-request

    def _serve(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._refuse(HTTPStatus.LENGTH_REQUIRED)
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._refuse(HTTPStatus.BAD_REQUEST if length < 0 else HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self._call_app(body)
        self.send_response(int(status.split(" ", 1)[0]), status.partition(" ")[2])  # with Date and Server
        for name, value in headers:
            if name.lower() not in {"content-length", "connection", "transfer-encoding", "date", "server"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _serve

    def _call_app(self, body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            started["status"], started["headers"] = status, headers
            return lambda data: chunks.append(data)

        chunks: list[bytes] = []
        try:
            result = self.server.app(self._environ(body), start_response)
            try:
                chunks.extend(result)
            finally:
                getattr(result, "close", lambda: None)()
        except Exception:
            logger.exception("local KMS: %s %s failed", self.command, self.path)
            return "500 Internal Server Error", [("Content-Type", "text/plain")], b"local KMS internal error"
        return started["status"], started["headers"], b"".join(chunks)

    def _environ(self, body: bytes) -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "RAW_URI": self.path,
            "REQUEST_URI": self.path,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            if "_" in name:  # as werkzeug: X_Foo must not pass for X-Foo
                continue
            key = name.upper().replace("-", "_")
            if key in {"CONTENT_TYPE", "CONTENT_LENGTH"}:
                continue
            key = f"HTTP_{key}"
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def _refuse(self, status: HTTPStatus) -> None:
        self.close_connection = True
        self.send_error(status)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        if self.server.verbose:
            super().log_message(format, *args)


class KeepAliveServer(ThreadingHTTPServer):
    """A thread per connection; remembers open connections so ``close_connections`` can end them."""

    daemon_threads = True
    block_on_close = False
    # socketserver listens with a backlog of 5: the kernel then queues 6 connections the accept loop has not
    # taken yet and drops the SYN of the 7th. A re-wrap opens KEY_REWRAP_CONCURRENCY (8) at once; when this
    # thread is starved (a loaded machine, a GC pause) a dropped SYN is resent only after 1 s, which is the
    # tests' KMS_CONNECT_TIMEOUT: the call fails as kms_unavailable. A real KMS endpoint does not drop them.
    request_queue_size = socket.SOMAXCONN

    def __init__(self, address: tuple[str, int], app: WsgiApp, *, verbose: bool = False) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = app
        self.verbose = verbose
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, KeepAliveHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End every open connection: its handler's next read fails and its thread exits."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client

    @property
    def open_connections(self) -> int:
        with self._open_lock:
            return len(self._open)
