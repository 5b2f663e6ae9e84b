"""Key health that follows reality between sweeps: what the data path learns about a customer key.

The first read or write whose KMS call fails with a key-state error (`key_disabled`, `key_pending_deletion`,
`key_access_denied`, `key_not_found`) marks the key's status at once, through `services.record_key_health`
(history and audit once per transition, cached data keys dropped in every process). Observations are
rate-limited through the shared cache: one per key and status per `KEY_STATE_OBSERVE_SECONDS` across all
processes, however many requests fail.

While a key's stored status is unhealthy, the shared cache holds a marker for its ARN. The first KMS call
with that key that succeeds on the data path takes the marker (one process wins: `cache.delete` says which)
and enqueues a full check (`tasks.check_key`), which clears the status if the key really works again. If the
cache loses the marker (a Redis restart), the scheduled sweep still clears it within one interval.

A failure observed inside a transaction is applied after it ends, whether it commits or rolls back (a refused
write rolls back, and the key's status must change all the same): on commit, at the end of the request, or
when the task ends.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.core.cache import cache
from django.core.signals import request_finished
from django.db import DatabaseError, connection, transaction
from django.tasks.signals import task_finished

from encryption_keys import health
from encryption_keys.envelope import EnvelopeError, ErrorCode

logger = logging.getLogger(__name__)

#: The errors that say something about the key itself (not the network, not one ciphertext).
KEY_STATE_ERRORS = frozenset({
    ErrorCode.KEY_DISABLED, ErrorCode.KEY_PENDING_DELETION, ErrorCode.KEY_ACCESS_DENIED, ErrorCode.KEY_NOT_FOUND,
})

_lock = threading.Lock()
_pending: list[tuple[str, EnvelopeError, str]] = []


def unhealthy_marker(key_ref: str) -> str:
    return f"encryption_keys:unhealthy:{key_ref}"


def _observed_marker(key_ref: str, status: str) -> str:
    return f"encryption_keys:observed:{key_ref}:{status}"


def remember_status(*, key_ref: str, key_id, status: str) -> None:
    """Keep the shared marker in step with a key's stored status (called whenever it is stored)."""
    try:
        if status in health.UNHEALTHY:
            cache.set(unhealthy_marker(key_ref), str(key_id), timeout=None)
        else:
            cache.delete(unhealthy_marker(key_ref))
    except Exception:  # noqa: BLE001 - the cache is an accelerator here: the sweep still corrects the status
        logger.warning("could not update the health marker of a key in the shared cache", exc_info=True)


def observed_failure(*, key_ref: str, error: EnvelopeError, operation: str) -> None:
    """A data-path KMS call with `key_ref` failed with `error`; mark the key's status if it says why."""
    if error.code not in KEY_STATE_ERRORS:
        return
    status = health.STATUS_OF_ERROR[error.code]
    try:
        first = cache.add(_observed_marker(key_ref, status), 1, timeout=settings.KEY_STATE_OBSERVE_SECONDS)
    except Exception:  # noqa: BLE001
        logger.warning("could not rate-limit a key-state observation through the shared cache", exc_info=True)
        first = True
    if not first:
        return
    with _lock:
        _pending.append((key_ref, error, operation))
    if connection.in_atomic_block:
        transaction.on_commit(apply_pending)
    else:
        apply_pending()


def apply_pending(**kwargs) -> int:
    """Store the observed failures not stored yet; returns how many statuses changed."""
    if connection.in_atomic_block:
        return 0
    with _lock:
        batch = list(_pending)
        _pending.clear()
    changed = 0
    for key_ref, error, operation in batch:
        try:
            changed += _mark(key_ref, error, operation)
        except DatabaseError:
            logger.warning("could not store a key-state observation; the sweep will", exc_info=True)
    return changed


def _mark(key_ref: str, error: EnvelopeError, operation: str) -> int:
    from encryption_keys.models import EncryptionKey
    from encryption_keys.services import record_key_health

    key = EncryptionKey.objects.filter(key_ref=key_ref).select_related("organization").first()
    status = health.STATUS_OF_ERROR[error.code]
    if key is None or key.status == status:  # a platform key, an unlinked key, or already known
        return 0
    reading = health.KeyHealth(
        status,
        deletion_date=getattr(error, "deletion_date", None) or key.deletion_date,
        error=f"{operation} failed on the data path: {error.detail}"[:500],
    )
    check = record_key_health(key=key, reading=reading, actor=None, source="data_path")
    return int(check.changed)


def observed_success(*, key_ref: str) -> None:
    """A data-path KMS call with `key_ref` succeeded: after a failure, enqueue the check that can clear it."""
    try:
        key_id = cache.get(unhealthy_marker(key_ref))
        if key_id is None or not cache.delete(unhealthy_marker(key_ref)):
            return  # healthy, or another process took the marker first
    except Exception:  # noqa: BLE001
        logger.warning("could not read the health marker of a key from the shared cache", exc_info=True)
        return
    from encryption_keys.tasks import check_key

    transaction.on_commit(lambda: check_key.enqueue(key_id))


def discard() -> None:
    with _lock:
        _pending.clear()


request_finished.connect(apply_pending, dispatch_uid="encryption_keys.key_state.apply_after_request")
task_finished.connect(apply_pending, dispatch_uid="encryption_keys.key_state.apply_after_task")
