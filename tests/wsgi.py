"""Calling the WSGI app directly in a test (schemathesis does), without losing the test's transaction."""

from contextlib import contextmanager

from django.core.signals import request_finished, request_started
from django.db import close_old_connections


@contextmanager
def connection_kept():
    """As Django's test client does: no connection closing around requests, or PostgreSQL loses the test
    transaction after the first call."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
