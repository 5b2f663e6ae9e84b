import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from devtools import local_kms
from encryption_keys import services
from encryption_keys.models import EncryptionKey


@pytest.fixture(autouse=True)
def no_settle_sweep(settings):
    """Re-wraps run in the request/test thread (tests.settings: the immediate task backend). No settle sweep:
    one process, so no writer can be behind on the key switch (see lifecycle.rewrap.settle_seconds)."""
    settings.KEY_REWRAP_SETTLE_SECONDS = 0


@pytest.fixture
def linked_key(org, org_admin, cmek) -> EncryptionKey:
    """The org's US key, linked through the real Link flow (verification checklist included)."""
    return services.link_key(organization=org, region="us", key_ref=cmek, name="primary", actor=org_admin).key


@pytest.fixture
def new_cmek(org):
    """A second multi-region customer key, replicated like the first: the replacement."""
    arn = local_kms.create_key(region="us-west-2", description="replacement key", multi_region=True)
    local_kms.replicate_key(arn, to_region="us-east-2")
    return arn


def listen_queue(port: int) -> int:
    """Connections the kernel has completed on the loopback listener `port` and nobody has accepted yet."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # 0A: LISTEN; rx_queue is the accept queue
            return int(fields[4].split(":")[1], 16)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture
def kms_accepting_late(kms_server, settings):
    """`with kms_accepting_late(connections=n):` the local KMS accepts no connection until `n` wait for it.

    Its accept loop is a thread of the test process: on a loaded machine (or in a GC pause) it runs late
    while the client's threads connect. This makes that deterministic: connections pile up in the listen
    queue, as many as the client opens at once. Should fewer than `n` ever fit there (the kernel dropped a
    SYN), the loop waits 3 x KMS_CONNECT_TIMEOUT before it accepts, so a dropped connect has timed out.
    """
    httpd = kms_server._httpd

    @contextmanager
    def accepting_late(*, connections: int):
        accept = httpd.get_request
        held_until = time.monotonic() + 3 * settings.KMS_CONNECT_TIMEOUT

        def get_request():
            while listen_queue(kms_server.port) < connections and time.monotonic() < held_until:
                time.sleep(0.005)  # polls a condition: the accept loop's own thread, the test's thread runs on
            httpd.get_request = accept  # once: later connections are accepted as they come
            return accept()

        httpd.get_request = get_request
        try:
            yield
        finally:
            httpd.__dict__.pop("get_request", None)

    return accepting_late


@pytest.fixture
def kms_cutting_answer(kms_server, monkeypatch):
    """`with kms_cutting_answer(operation="ReEncrypt", nth=4):` the local KMS sends the headers of its answer
    to the n-th such call, then the connection ends before the body.

    That is what `stop()` does to a call in flight whose handler has written the headers (one send) and not
    yet the body (the next): on a loaded machine the handler thread is preempted in between while the test's
    thread stops the server. Here it happens at a chosen call, every time (on pooled connections too: the
    handler class is changed, not the server's).
    """
    import socket

    from devtools.local_kms.wsgi import KeepAliveHandler

    @contextmanager
    def cutting_answer(*, operation: str, nth: int):
        end_headers = KeepAliveHandler.end_headers
        seen = []

        def end_headers_then_cut(handler):
            end_headers(handler)  # written: the status line and Content-Length
            if handler.headers.get("X-Amz-Target", "").endswith(f".{operation}"):
                seen.append(handler.path)
                if len(seen) == nth:
                    handler.connection.shutdown(socket.SHUT_RDWR)  # the body never leaves

        with monkeypatch.context() as patch:
            patch.setattr(KeepAliveHandler, "end_headers", end_headers_then_cut)
            yield
        assert len(seen) >= nth, f"only {len(seen)} {operation} calls reached the local KMS"

    return cutting_answer
