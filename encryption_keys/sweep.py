"""The scheduled key-health sweep: one DescribeKey per linked customer key and per platform key, many in flight.

`sweep_key_health` runs in a task worker (`tasks.sweep_key_health`, every KEY_HEALTH_SWEEP_SECONDS), never in a
web process. Its KMS calls run in a pool of KEY_HEALTH_SWEEP_CONCURRENCY threads that only call KMS; the
calling thread does every database read and write. So a sweep of N keys takes about N × (one KMS round trip)
÷ concurrency, and costs exactly N KMS calls (`health.read_key_state` says why DescribeKey is enough).

What a reading does with a customer key:
- the same status (and deletion date and metadata) as stored: only `last_checked_at` moves, for all such keys
  in one UPDATE — no history, no audit event, nothing to evict;
- another status: `services.record_key_health` stores it (history, audit once, keyring eviction);
- the key is Enabled but stored unhealthy (disabled earlier, or refused on the data path): DescribeKey cannot
  prove the key works for the organization again, so the key is returned for a full check (`check_key`).

Platform keys (settings.PLATFORM_KMS_KEYS) are read the same way; their state is kept in PlatformKeyHealth for
the operator console, and a change of status is logged as a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import connection
from django.utils import timezone

from encryption_keys import health, keyring, services
from encryption_keys.models import EncryptionKey, KeyStatus, PlatformKeyHealth

logger = logging.getLogger(__name__)

#: Statuses a DescribeKey answer of `Enabled` can confirm on its own.
USABLE = frozenset({KeyStatus.HEALTHY, KeyStatus.ROTATION_DISABLED})
#: Keys per UPDATE of `last_checked_at` (well under every database's limit of query parameters).
UPDATE_CHUNK = 500


@dataclass
class SweepResult:
    keys: int = 0
    platform_keys: int = 0
    changed: int = 0  # customer and platform keys whose status changed
    recheck: list[str] = field(default_factory=list)  # ids of keys that need the full check to clear them


def concurrency() -> int:
    """KMS calls in flight at once during a sweep (`KEY_HEALTH_SWEEP_CONCURRENCY`, default 16)."""
    return max(1, int(getattr(settings, "KEY_HEALTH_SWEEP_CONCURRENCY", 16)))


def sweep_key_health(*, now: datetime | None = None) -> SweepResult:
    """Read every linked key and every platform key once (one DescribeKey each) and store what changed."""
    keys = list(EncryptionKey.objects.order_by("pk").only(
        "pk", "key_arn", "organization_id", "status", "deletion_date", "kms_metadata"))
    platform = sorted(settings.PLATFORM_KMS_KEYS.items())
    reads = [partial(health.read_key_state, key_ref=key.key_arn, organization_id=key.organization_id,
                     previous_metadata=key.kms_metadata) for key in keys]
    reads += [partial(health.read_key_state, key_ref=arn) for _, arn in platform]
    readings = read_all(reads)
    now = now or timezone.now()
    result = SweepResult(keys=len(keys), platform_keys=len(platform))
    _store_customer_keys(keys, readings[:len(keys)], now=now, result=result)
    for (region, arn), reading in zip(platform, readings[len(keys):], strict=True):
        result.changed += store_platform_key(region=region, key_arn=arn, reading=reading, now=now)
    PlatformKeyHealth.objects.exclude(region__in=[region for region, _ in platform]).delete()  # no longer configured
    return result


def read_all(reads: list[Callable[[], health.KeyHealth]]) -> list[health.KeyHealth]:
    """Run `reads` with at most `concurrency()` in flight; the readings in the order of `reads`."""
    workers = min(concurrency(), len(reads))
    if workers <= 1:
        return [read() for read in reads]
    with ThreadPoolExecutor(workers, thread_name_prefix="key-health") as pool:
        return list(pool.map(_in_pool_thread, reads))


def _in_pool_thread(read: Callable[[], health.KeyHealth]) -> health.KeyHealth:
    try:
        return read()
    finally:
        if connection.connection is not None:  # a KMS-call log flush opened one in this pool thread
            connection.close()


def _store_customer_keys(keys: list[EncryptionKey], readings: list[health.KeyHealth], *, now: datetime,
                         result: SweepResult) -> None:
    unchanged = []
    for key, reading in zip(keys, readings, strict=True):
        if _same(key, reading):
            unchanged.append(key.pk)
        elif reading.status in USABLE and key.status not in USABLE:
            result.recheck.append(str(key.pk))
        else:
            try:
                result.changed += services.record_key_health(key=key, reading=reading, source="sweep").changed
            except EncryptionKey.DoesNotExist:  # unlinked during the sweep
                pass
    for start in range(0, len(unchanged), UPDATE_CHUNK):
        EncryptionKey.objects.filter(pk__in=unchanged[start:start + UPDATE_CHUNK]).update(last_checked_at=now)


def _same(key: EncryptionKey, reading: health.KeyHealth) -> bool:
    return (reading.status == key.status and reading.deletion_date == key.deletion_date
            and (not reading.metadata or reading.metadata == key.kms_metadata))


def store_platform_key(*, region: str, key_arn: str, reading: health.KeyHealth, now: datetime) -> bool:
    """Keep the reading of the platform key of `region`; True when its status changed (logged as a warning)."""
    row = PlatformKeyHealth.objects.filter(region=region).first()
    previous = row.status if row is not None and row.key_arn == key_arn else None
    row = row or PlatformKeyHealth(region=region)
    changed = previous is not None and previous != reading.status
    if previous is None or changed:
        row.changed_at = now
    row.key_arn, row.status, row.deletion_date = key_arn, reading.status, reading.deletion_date
    row.last_error, row.last_checked_at = reading.error[:500], now
    row.save()
    if changed or (previous is None and reading.status not in USABLE):
        logger.warning("platform key of region %s (%s): %s → %s%s", region, key_arn, previous or "first reading",
                       reading.status, f" ({reading.error})" if reading.error else "")
    if reading.status in health.REVOKED and previous not in health.REVOKED:
        keyring.data_key_cache().evict_wrapping_key(key_arn)
        keyring.invalidate_everywhere()
    return changed
