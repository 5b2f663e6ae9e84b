"""The scheduled key-health sweep over 1,000 organizations' keys: KMS calls per key, and time against the bound.

One run, one database (a temporary SQLite file, migrated), the local KMS server in its own process over HTTP,
answering each request `LATENCY_MS` later — the network round trip to AWS KMS, which loopback lacks:

- N organizations, each with a linked customer key (multi-Region, rotation on, replicated) in the local KMS,
  plus the platform key of the one configured region;
- the median latency of one DescribeKey through `kms.describe_key` (the app's one door to KMS), measured from
  this process, one call at a time;
- one priming sweep, untimed (it stores each key's DescribeKey snapshot through record_key_health, as linking
  would have), then the measured sweep: the `sweep_key_health` task as a worker runs it, with the configured
  KEY_HEALTH_SWEEP_CONCURRENCY, every key already known — what every sweep after the first does;
- its KMS calls, from the key-usage log: exactly one (DescribeKey) per key;
- the bound: 1.5 × keys × median ÷ concurrency, and elapsed ÷ bound.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench import figure, progress
from bench.kms_process import KmsProcess

NAME = "health_sweep"
FULL = {"organizations": 1_000, "latency_samples": 100}
QUICK = {"organizations": 40, "latency_samples": 20}
#: The simulated network round trip of one KMS request (AWS KMS answers in a few to tens of milliseconds).
LATENCY_MS = 50.0
BOUND_FACTOR = 1.5
SETUP_THREADS = 10  # creating the keys in the local KMS (untimed; botocore keeps 10 connections)


def run(*, quick: bool) -> dict:
    params = QUICK if quick else FULL
    with contextlib.ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="konnect-health-sweep-")))
        server = _django(f"sqlite:///{directory}/db")
        stack.callback(server.stop)
        return _measure(server, **params)


def _django(database_url: str) -> KmsProcess:
    """Configure Django (tests.settings on a fresh database), migrate, start the local KMS server process."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from encryption_keys import keyring
    from encryption_keys.providers.aws import kms

    server = KmsProcess(latency_ms=LATENCY_MS)
    settings.KMS_ENDPOINT_URL = server.endpoint_url
    settings.KMS_ENDPOINT_URLS = {}
    settings.PLATFORM_KMS_KEYS = server.platform_keys
    kms.reset_clients()
    keyring.reset_for_tests()
    return server


def _measure(server: KmsProcess, *, organizations: int, latency_samples: int) -> dict:
    from django.conf import settings

    from encryption_keys import call_log
    from encryption_keys.models import EncryptionKey, KmsCall
    from encryption_keys.sweep import concurrency
    from encryption_keys.tasks import sweep_key_health

    arns = _linked_keys(server, organizations)
    median = _median_describe_latency(arns[:latency_samples])
    progress("health_sweep: priming sweep (stores each key's snapshot, untimed)")
    primed = sweep_key_health.call()
    call_log.flush()
    keys = EncryptionKey.objects.count() + len(settings.PLATFORM_KMS_KEYS)

    workers = concurrency()
    before = KmsCall.objects.order_by("-id").values_list("id", flat=True).first() or 0
    progress(f"health_sweep: sweeping {keys:,} keys, {workers} KMS calls in flight")
    started = time.perf_counter()
    outcome = sweep_key_health.call()
    elapsed = time.perf_counter() - started
    calls = KmsCall.objects.filter(id__gt=before)
    operations = set(calls.values_list("operation", flat=True))
    calls_per_key = set(calls.values("key_arn").annotate(n=_count()).values_list("n", flat=True))
    total_calls = calls.count()
    failed = calls.exclude(outcome="ok").count()
    if outcome["keys"] + outcome["platform_keys"] != keys or outcome["changed"] or outcome["rechecked"]:
        raise RuntimeError(f"the measured sweep did not find every key healthy and unchanged: {outcome}")

    bound = BOUND_FACTOR * keys * median / workers
    one_per_key = total_calls == keys and operations == {"DescribeKey"} and calls_per_key == {1} and not failed
    progress(f"health_sweep: {total_calls:,} KMS calls for {keys:,} keys in {elapsed:.3f} s; median DescribeKey "
             f"{median * 1000:.2f} ms; bound {bound:.3f} s; elapsed ÷ bound {elapsed / bound:.2f}")
    chart = f"Key-health sweep of {keys:,} keys, {workers} calls in flight (median call {median * 1000:.0f} ms)"
    return {
        "name": NAME,
        "description": f"a scheduled key-health sweep over {organizations:,} organizations' linked keys and the "
                       f"platform key: KMS calls per key and time against {BOUND_FACTOR:g} × keys × median KMS "
                       "call latency ÷ concurrency",
        "figures": [
            figure("keys swept (linked customer keys + platform keys)", keys, "keys"),
            figure("KMS calls made by the sweep", total_calls, "calls", target=f"= {keys} (one DescribeKey per key)",
                   met=one_per_key),
            figure("median latency of one DescribeKey (from this process, one at a time)", median * 1000, "ms"),
            figure("configured concurrency (KEY_HEALTH_SWEEP_CONCURRENCY)", workers, "calls in flight"),
            figure("sweep: time", elapsed, "s", target=f"≤ {bound:.3f} s", met=elapsed <= bound),
            figure(f"bound: {BOUND_FACTOR:g} × keys × median ÷ concurrency", bound, "s"),
            figure("sweep time ÷ bound", elapsed / bound, "×", target="≤ 1", met=elapsed <= bound),
            figure("sweep: keys/s", keys / elapsed, "keys/s", chart_group=chart),
            figure("one call at a time (keys ÷ median): keys/s", 1 / median, "keys/s", chart_group=chart),
        ],
        "parameters": {"organizations": organizations, "latency_samples": latency_samples,
                       "kms": f"local KMS server in its own process over HTTP/1.1 keep-alive (loopback), answering "
                              f"each request {LATENCY_MS:g} ms later (simulated network round trip)",
                       "database": "SQLite (temporary file)", "concurrency": workers},
        "priming_sweep": primed,
        "notes": [
            "The measured sweep is a steady-state one: every key was read before (the priming sweep stored what "
            "linking stores), so unchanged keys only have last_checked_at updated, in one UPDATE per 500 keys.",
            f"The local KMS answers each request {LATENCY_MS:g} ms late, standing for the network: without it, "
            "loopback calls cost only CPU (botocore here, moto there), which two cores cannot run 16 at a time, "
            "and the bound (which assumes the calls wait on the network) would measure CPU, not concurrency.",
            "KMS calls are counted from the key-usage log (KmsCall rows), which records every call kms.py makes.",
        ],
    }


def _count():
    from django.db.models import Count

    return Count("id")


def _linked_keys(server: KmsProcess, organizations: int) -> list[str]:
    """`organizations` organizations, each with a customer key linked for the US region; returns the key ARNs."""
    from encryption_keys.models import EncryptionKey
    from konnect_admin import services

    progress(f"health_sweep: creating {organizations:,} customer keys in the local KMS")
    client = server.client()  # one client for every thread (botocore clients are thread-safe, creating them is not)

    def create(index: int) -> str:  # as KmsProcess.create_cmek: multi-Region, rotation on, replicated
        arn = client.create_key(Description=f"bench sweep {index}", MultiRegion=True)["KeyMetadata"]["Arn"]
        client.enable_key_rotation(KeyId=arn)
        client.replicate_key(KeyId=arn, ReplicaRegion="us-east-2")
        return arn

    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        arns = list(pool.map(create, range(organizations)))
    progress(f"health_sweep: creating {organizations:,} organizations with a linked key each")
    for index, arn in enumerate(arns):
        organization = services.organization_create(name=f"bench sweep {index:04d}", actor=None)
        EncryptionKey.objects.create(organization=organization, region="us", name=f"key {index}", key_arn=arn)
    return arns


def _median_describe_latency(arns: list[str]) -> float:
    """Median seconds of one DescribeKey through kms.py, one call at a time (the first, which opens the
    connection, is not counted)."""
    from encryption_keys import call_log
    from encryption_keys.providers.aws import kms

    kms.describe_key(key_arn=arns[0])
    samples = []
    for arn in arns:
        started = time.perf_counter()
        kms.describe_key(key_arn=arn)
        samples.append(time.perf_counter() - started)
    call_log.discard()  # not the sweep's calls
    return statistics.median(samples)
