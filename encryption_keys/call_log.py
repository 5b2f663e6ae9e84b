"""The key-usage log: every KMS call becomes a KmsCall row, written in batches off the hot path.

Records are buffered in memory and written by `flush()`: at the end of each request, every
`FLUSH_EVERY` records, and before anything reads the log. A write that rolls back (a refused
ingest) still leaves its KMS calls in the log, because they are flushed after the transaction.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from django.core.signals import request_finished
from django.db import DatabaseError, connection

FLUSH_EVERY = 200
logger = logging.getLogger(__name__)
_lock = threading.Lock()
_pending: list[dict] = []


def record(**fields) -> None:
    fields.setdefault("created_at", datetime.now(UTC))
    with _lock:
        _pending.append(fields)
        full = len(_pending) >= FLUSH_EVERY
    if full and not connection.in_atomic_block:
        flush()


def flush() -> int:
    from encryption_keys.models import KmsCall

    with _lock:
        batch = list(_pending)
        _pending.clear()
    if not batch:
        return 0
    try:
        KmsCall.objects.bulk_create([KmsCall(**fields) for fields in batch])
    except DatabaseError:
        # The log must never break the request that made the calls; keep the records for the next flush.
        logger.warning("could not write %d KMS call records; will retry", len(batch), exc_info=True)
        with _lock:
            _pending[:0] = batch
        return 0
    return len(batch)


def discard() -> None:
    with _lock:
        _pending.clear()


def _flush_after_request(**kwargs) -> None:
    if not connection.in_atomic_block:
        flush()


request_finished.connect(_flush_after_request, dispatch_uid="encryption_keys.call_log.flush")
