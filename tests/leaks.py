"""Planted plaintexts and a log capture for the whole test session.

Tests that write encrypted data register their plaintext with `plant()`. Every log record of the
session, at every level, is captured; the last test of the run (tests/test_zz_no_plaintext_in_logs.py)
asserts that no planted plaintext appears in any of them.
"""

from __future__ import annotations

import logging
import threading

_planted: set[str] = set()
_lock = threading.Lock()


def plant(text: str) -> str:
    with _lock:
        _planted.add(text)
    return text


def planted() -> frozenset[str]:
    with _lock:
        return frozenset(_planted)


class SessionLogCapture(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record):
        try:
            text = self.format(record)
        except Exception:  # noqa: BLE001 - a broken record must not break the suite
            text = f"{record.levelname} {record.name} <unformattable: {record.msg!r}>"
        with _lock:
            self.lines.append(text)


capture = SessionLogCapture()


def install() -> None:
    root = logging.getLogger()
    if capture in root.handlers:
        return
    for handler in root.handlers:
        if handler.level == logging.NOTSET:
            handler.setLevel(logging.INFO)  # keep the console as it was; only the capture sees DEBUG
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)


def leaks() -> list[tuple[str, str]]:
    with _lock:
        lines = list(capture.lines)
    return [(secret, line) for secret in planted() for line in lines if secret in line]
