"""Re-wrapping data keys from a replaced key to its successor.

Key-service calls are proportional to data keys, never to records: each DEK is re-wrapped by
`rewrap_data_key` — inside the key service where it can (AWS ReEncrypt, Transit rewrap: the plaintext never
leaves it), else by a decrypt with the source key's provider and an encrypt with the destination's (a policy
refusing ReEncrypt, or a move between key services). No record is rewritten; the envelope names the DEK, not
the key.

The DEKs of a batch move in one transaction, each guarded by `wrapping_key_arn == old`, so a crash leaves
each DEK under exactly one of the two keys, and a re-run (which selects what is still under the old key)
finishes the rest. DEKs that cannot be re-wrapped (the old key is already revoked) stay under the old key,
are counted and recorded as RewrapFailure rows, and are retried by the next run.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BinaryField, Case, F, Q, QuerySet, Value, When
from django.utils import timezone

from encryption_keys import call_log, keyring
from encryption_keys.envelope import EnvelopeError, ErrorCode
from encryption_keys.lifecycle.models import RewrapFailure, RewrapJob, RewrapState
from encryption_keys.models import DataKey
from encryption_keys.providers import KeyServiceError, provider_for
from konnect_admin.services import audit_record

logger = logging.getLogger(__name__)
BATCH_SIZE = 50

Progress = Callable[[RewrapJob], None]


class RewrapInterrupted(Exception):
    """The run stopped before the end (e.g. KMS unreachable); the job is marked failed and can be resumed."""

    def __init__(self, job: RewrapJob, error: Exception):
        super().__init__(f"re-wrap job {job.pk} interrupted: {error}")
        self.job = job
        self.error = error


def data_keys_under(*, organization_id, region: str, key_arn: str) -> QuerySet[DataKey]:
    """The organization's live data keys in `region` that `key_arn` wraps."""
    return DataKey.objects.filter(
        organization_id=organization_id, region=region, wrapping_key_arn=key_arn, shredded_at__isnull=True
    )


def concurrency() -> int:
    """KMS calls in flight at once (`KEY_REWRAP_CONCURRENCY`, default 8); database writes stay sequential."""
    return max(1, int(getattr(settings, "KEY_REWRAP_CONCURRENCY", 8)))


def settle_seconds() -> float:
    """How long after the switch a run sweeps once more for DEKs another process made under the old key
    just before it saw the new one (it re-reads the linked key within GENERATION_CHECK_SECONDS)."""
    return float(getattr(settings, "KEY_REWRAP_SETTLE_SECONDS", 2 * keyring.GENERATION_CHECK_SECONDS))


def rewrap_data_keys(job: RewrapJob, *, actor=None, on_progress: Progress | None = None) -> RewrapJob:
    """Run (or resume) `job` to the end; returns the job in its final state.

    Raises RewrapInterrupted when the run cannot go on (KMS unreachable, database error): the job is
    then `failed` and a later run picks up where this one stopped.
    """
    job = _begin_run(job, actor=actor if actor is not None else job.actor)
    pending = data_keys_under(organization_id=job.organization_id, region=job.region, key_arn=job.old_key_arn)
    pending = pending.exclude(pk__in=RewrapFailure.objects.filter(job=job).values("data_key_id"))
    pool = ThreadPoolExecutor(concurrency(), thread_name_prefix=f"rewrap-{job.pk}-kms") if concurrency() > 1 else None
    try:
        swept = False
        while True:
            # Every pass handles each DEK it reads: moved, recorded as a failure, or found moved by another
            # run; all three leave `pending`, so a later pass sees only DEKs made since (or none).
            if _rewrap_stream(job, _in_pages(pending), pool, on_progress):
                call_log.flush()
                continue
            wait = settle_seconds() - (timezone.now() - job.created_at).total_seconds()
            if swept or wait <= 0:
                break
            time.sleep(wait)
            swept = True
    except Exception as error:
        _interrupt(job, error, actor=actor)
        if isinstance(error, EnvelopeError):
            raise RewrapInterrupted(job, error) from error
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        call_log.flush()
    return _finish(job, actor=actor if actor is not None else job.actor)


def _begin_run(job: RewrapJob, *, actor) -> RewrapJob:
    with transaction.atomic():
        job = RewrapJob.objects.select_for_update().get(pk=job.pk)
        job.failures.all().delete()  # this run retries them
        remaining = data_keys_under(
            organization_id=job.organization_id, region=job.region, key_arn=job.old_key_arn
        ).count()
        resumed = job.started_at is not None
        job.state = RewrapState.RUNNING
        job.failed = 0
        job.total = job.done + remaining
        job.last_error = ""
        job.started_at = job.started_at or timezone.now()
        job.finished_at = None
        job.save()
        audit_record(
            actor=actor, organization=job.organization, action="encryption_key.rewrap_started", target=job,
            details={**_arns(job), "data_keys": remaining, "resumed": resumed},
        )
    return job


def commit_every() -> int:
    """Re-wrapped DEKs stored per transaction (`KEY_REWRAP_COMMIT_EVERY`, default 25): all of them switch keys,
    or none, so each DEK is still under exactly one key; fewer commits make a large re-wrap much faster."""
    return max(1, int(getattr(settings, "KEY_REWRAP_COMMIT_EVERY", 25)))


def _in_pages(pending: QuerySet[DataKey]) -> Iterator[DataKey]:
    """`pending` in (created_at, id) order, read BATCH_SIZE rows at a time by keyset: the next page is read
    while the previous one's KMS calls are still in flight, so the pipeline never drains between pages."""
    last: DataKey | None = None
    while True:
        page = pending.order_by("created_at", "id")
        if last is not None:
            page = page.filter(Q(created_at__gt=last.created_at) | Q(created_at=last.created_at, id__gt=last.id))
        rows = list(page[:BATCH_SIZE])
        yield from rows
        if len(rows) < BATCH_SIZE:
            return
        last = rows[-1]


def _rewrap_stream(job: RewrapJob, data_keys: Iterable[DataKey], pool: ThreadPoolExecutor | None,
                   on_progress) -> int:
    """KMS calls run in the pool, at most `concurrency()` at once; results are stored in order, `commit_every()`
    DEKs per transaction. Without a pool, strictly one KMS call after the other. Returns the DEKs handled."""
    limit = concurrency() if pool is not None else 1
    window: deque[tuple[DataKey, Future | None]] = deque()
    rewrapped: list[tuple[DataKey, bytes]] = []
    handled = total = 0

    def store(force: bool = False) -> None:
        nonlocal handled
        if force or len(rewrapped) >= commit_every():
            _store_rewrapped(job, rewrapped)
            rewrapped.clear()
            for _ in range(handled if on_progress is not None else 0):
                on_progress(job)
            handled = 0

    def collect() -> None:
        nonlocal handled, total
        _collect_outcome(job, *window.popleft(), rewrapped)
        handled += 1
        total += 1
        store()

    try:
        for data_key in data_keys:
            window.append((data_key, _start_call(job, data_key, pool)))
            if len(window) >= limit:
                collect()
        while window:
            collect()
    finally:
        store(force=True)  # what KMS already re-wrapped is kept, even when the run stops here
    return total


def _start_call(job: RewrapJob, data_key: DataKey, pool: ThreadPoolExecutor | None) -> Future | None:
    if not data_key.wrapped:
        return None
    if pool is not None:
        return pool.submit(_in_worker, _rewrapped, job, data_key)
    future: Future = Future()
    try:
        future.set_result(_rewrapped(job, data_key))
    except KeyServiceError as error:
        future.set_exception(error)
    return future


def _in_worker(function, *args):
    try:
        return function(*args)
    finally:
        if connection.connection is not None:  # a KMS-call log flush opened one in this pool thread
            connection.close()


def _collect_outcome(job: RewrapJob, data_key: DataKey, call: Future | None, rewrapped: list) -> None:
    if call is None:
        _record_failure(job, data_key, EnvelopeError(ErrorCode.DATA_KEY_SHREDDED, detail="no wrapped key material"))
        return
    try:
        rewrapped.append((data_key, call.result()))
    except KeyServiceError as error:
        if error.code is ErrorCode.KMS_UNAVAILABLE:
            raise  # nothing is wrong with this DEK: stop the run, a resume finishes it
        _record_failure(job, data_key, error)


def _store_rewrapped(job: RewrapJob, rewrapped: list[tuple[DataKey, bytes]]) -> None:
    if not rewrapped:
        return
    # One UPDATE for the lot; the guard keeps a DEK that another run (or a shred) already moved as it is.
    wrapped_by_pk = Case(
        *(When(pk=data_key.pk, then=Value(bytes(wrapped))) for data_key, wrapped in rewrapped),
        output_field=BinaryField(),
    )
    with transaction.atomic():
        moved = DataKey.objects.filter(
            pk__in=[data_key.pk for data_key, _ in rewrapped], wrapping_key_arn=job.old_key_arn,
            shredded_at__isnull=True,
        ).update(wrapped=wrapped_by_pk, wrapping_key_arn=job.new_key_arn, rewrapped_at=timezone.now())
        if moved:
            RewrapJob.objects.filter(pk=job.pk).update(done=F("done") + moved)
    job.done += moved


def _rewrapped(job: RewrapJob, data_key: DataKey) -> bytes:
    """The DEK wrapped by the new key, under the same encryption context."""
    wrapped, _ = rewrap_data_key(source_ref=job.old_key_arn, destination_ref=job.new_key_arn,
                                 wrapped=bytes(data_key.wrapped), context=data_key.encryption_context(),
                                 organization_id=data_key.organization_id)
    return wrapped


#: How `rewrap_data_key` moved a data key: inside the key service, or through the platform's memory.
REWRAPPED_IN_SERVICE = "rewrap"
DECRYPT_ENCRYPT = "decrypt_encrypt"


def rewrap_data_key(*, source_ref: str, destination_ref: str, wrapped: bytes, context: dict[str, str],
                    organization_id) -> tuple[bytes, str]:
    """One wrapped data key re-wrapped from ``source_ref`` to ``destination_ref`` under the same context, and how.

    The one re-wrap of the platform (key replacement and vault protection alike). The destination's provider
    re-wraps inside its service when it can; when it cannot do this pair (None: another key service) or its
    policy refuses (``key_access_denied``: a key policy may grant Decrypt/Encrypt but not ReEncrypt*), the
    data key is decrypted by the source's provider and encrypted by the destination's, its plaintext dropped at
    once. Raises KeyServiceError."""
    source, destination = provider_for(source_ref), provider_for(destination_ref)
    try:
        rewrapped = destination.rewrap(source_ref=source_ref, destination_ref=destination_ref, wrapped=wrapped,
                                       context=context, organization_id=organization_id)
    except KeyServiceError as error:
        if error.code is not ErrorCode.KEY_ACCESS_DENIED:
            raise
        rewrapped = None
    if rewrapped is not None:
        return rewrapped, REWRAPPED_IN_SERVICE
    plaintext = source.decrypt(key_ref=source_ref, wrapped=wrapped, context=context, organization_id=organization_id)
    try:
        return (destination.encrypt(key_ref=destination_ref, plaintext=plaintext, context=context,
                                    organization_id=organization_id), DECRYPT_ENCRYPT)
    finally:
        del plaintext


def _record_failure(job: RewrapJob, data_key: DataKey, error: EnvelopeError) -> None:
    with transaction.atomic():
        _, created = RewrapFailure.objects.update_or_create(
            job=job, data_key=data_key, defaults={"code": error.code.value, "detail": (error.detail or "")[:500]}
        )
        if created:
            RewrapJob.objects.filter(pk=job.pk).update(failed=F("failed") + 1)
    job.failed += created
    logger.warning("re-wrap job %s: data key %s stays under the old key (%s)", job.pk, data_key.pk, error.code)


def _finish(job: RewrapJob, *, actor) -> RewrapJob:
    with transaction.atomic():
        job = RewrapJob.objects.select_for_update().get(pk=job.pk)
        job.state = RewrapState.COMPLETED_WITH_FAILURES if job.failed else RewrapState.COMPLETED
        job.total = max(job.total, job.processed)
        job.finished_at = timezone.now()
        job.save()
        audit_record(
            actor=actor, organization=job.organization, action="encryption_key.rewrap_finished", target=job,
            details={**_arns(job), "outcome": job.state, "rewrapped": job.done, "failed": job.failed},
        )
    return job


def _interrupt(job: RewrapJob, error: Exception, *, actor) -> None:
    reason = str(error)[:500] if isinstance(error, EnvelopeError) else type(error).__name__
    logger.warning("re-wrap job %s interrupted: %s", job.pk, reason)
    try:
        with transaction.atomic():
            RewrapJob.objects.filter(pk=job.pk).update(
                state=RewrapState.FAILED, last_error=reason, finished_at=timezone.now()
            )
            audit_record(
                actor=actor if actor is not None else job.actor, organization=job.organization,
                action="encryption_key.rewrap_interrupted", target=job,
                details={**_arns(job), "reason": reason, "rewrapped": job.done, "failed": job.failed},
            )
    except Exception:  # the database itself may be what failed; the job then stays `running` until resumed
        logger.exception("could not mark re-wrap job %s as interrupted", job.pk)
    job.state = RewrapState.FAILED
    job.last_error = reason


def _arns(job: RewrapJob) -> dict:
    return {"old_key_arn": job.old_key_arn, "new_key_arn": job.new_key_arn, "rewrap_job": job.pk}
