"""Key replacement: re-wrapping data keys vs re-encrypting every record; and the revocation bound measured.

One run, one database (a temporary SQLite file, migrated — or, as ``rewrap_postgres``, a scratch
PostgreSQL database), the local KMS server in its own process over HTTP (as KMS is in production: its
work does not share this interpreter's lock):

- N records (1 KiB text values, tests.testapp SealedNote) across D data keys under CMEK A;
- **re-wrap** (what **Replace key** does): ``replace_key`` switches the key and enqueues ``rewrap_job`` on the
  database task queue (``TASKS_BACKEND=db``), and a real ``manage.py db_worker`` process, started on the bench
  database, picks it up and moves the D DEKs from A to CMEK B — one ReEncrypt each, committed in small batches;
  no record is touched (checked: envelope digest). Timed from the enqueue to the task finished (the queue's own
  timestamps: waiting for the worker's poll, the run, the result stored). A re-wrap takes a fraction of a
  second, so one sample would be mostly noise: after one untimed warm-up task (the worker's first: imports, KMS
  connection) it is done ``rewrap_passes`` times (A→B, B→B₂, …, each a whole key replacement) and the median
  pass is compared;
- **full re-encryption** (the approach of platforms that "sync" data to a new key): every record is read,
  decrypted and encrypted again under fresh DEKs of CMEK C, and written back — done as efficiently as the
  envelope allows (batches of 2 000, one Decrypt per old DEK, one GenerateDataKey per scope, bulk_update);
- after each, every record is revealed with a cold key cache and compared with what was written (untimed).

Revocation latency: a reader with a warm cache, the key disabled in KMS, the value read every 10 ms until a
read fails — (a) with the cache TTL alone (DATAKEY_CACHE_TTL; worst case: the cache was filled just before
the key was revoked), (b) when another process bumps the shared cache generation (what check_keys and a key
replacement do), (c) with DATAKEY_CACHE_TTL = 0.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import figure, postgres_database, progress
from bench.kms_process import KmsProcess

NAME = "rewrap"
FULL = {"records": 100_000, "data_keys": 100, "rewrap_passes": 5,
        "revocation_ttl": None}  # None: the configured DATAKEY_CACHE_TTL
QUICK = {"records": 5_000, "data_keys": 10, "rewrap_passes": 2, "revocation_ttl": 2}
VALUE_BYTES = 1024
BATCH = 2_000
TARGET_SPEEDUP = 100.0
DATABASES = {"sqlite": "SQLite (temporary file)", "postgres": "PostgreSQL (scratch database)"}
POLL_SECONDS = 0.01
#: How often the idle worker looks for a task (`db_worker --interval`; its default is 1 s, `make run` uses 0.5 s).
#: The wait for the next poll is part of the timed re-wrap, and reported on its own.
WORKER_INTERVAL = 0.1
WORKER_DEADLINE_SECONDS = 600


def run(*, quick: bool, database: str = "sqlite") -> dict:
    params = QUICK if quick else FULL
    with contextlib.ExitStack() as stack:
        if database == "postgres":
            url = stack.enter_context(postgres_database("rewrap"))
        else:
            url = f"sqlite:///{Path(stack.enter_context(tempfile.TemporaryDirectory(prefix='konnect-rewrap-')))}/db"
        server = _django(url)
        stack.callback(server.stop)
        global _worker
        _worker = stack.enter_context(_worker_process(url, server))
        return _measure(**params, database=database)


def _django(database_url: str):
    """Configure Django (tests.settings on a fresh database), migrate, start the local KMS server."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"  # the worker's too: the database task queue
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from encryption_keys import keyring
    from encryption_keys.providers.aws import kms

    global _kms
    server = _kms = KmsProcess()
    settings.KMS_ENDPOINT_URL = server.endpoint_url
    settings.KMS_ENDPOINT_URLS = {}
    settings.PLATFORM_KMS_KEYS = server.platform_keys
    kms.reset_clients()
    keyring.reset_for_tests()
    return server


_kms: KmsProcess | None = None
_worker: subprocess.Popen | None = None
_worker_log: Path | None = None


@contextlib.contextmanager
def _worker_process(database_url: str, server: KmsProcess):
    """`manage.py db_worker` on the bench database and the local KMS, as production runs it (one worker), polling
    every WORKER_INTERVAL s; stopped with SIGTERM afterwards."""
    global _worker_log
    env = {key: value for key, value in os.environ.items() if not key.startswith("KONNECT_")}
    env.update(DJANGO_SETTINGS_MODULE="bench.settings", TASKS_BACKEND="db", DATABASE_URL=database_url,
               KMS_ENDPOINT_URL=server.endpoint_url, PYTHONUNBUFFERED="1",
               PLATFORM_KMS_KEYS=",".join(f"{geo}={arn}" for geo, arn in server.platform_keys.items()))
    with tempfile.TemporaryDirectory(prefix="konnect-rewrap-worker-") as logs:
        _worker_log = Path(logs) / "db_worker.log"
        with _worker_log.open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py, fixed arguments
                [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay",
                 "--interval", str(WORKER_INTERVAL), "--worker-id", "bench-rewrap"],
                cwd=Path(__file__).resolve().parent.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _cmek(label: str) -> str:
    return _kms.create_cmek(f"bench {label}")


def _value(index: int) -> str:
    head = f"record {index:07d} "
    return head + hashlib.sha256(head.encode()).hexdigest() * ((VALUE_BYTES - len(head)) // 64 + 1)


def _measure(*, records: int, data_keys: int, rewrap_passes: int, revocation_ttl: float | None,
             database: str) -> dict:
    from django.conf import settings

    from encryption_keys.models import EncryptionKey
    from konnect_admin import services

    organization = services.organization_create(name="bench", actor=None)
    key = EncryptionKey.objects.create(organization=organization, region="us", name="bench", key_arn=_cmek("A"))
    _write(organization, records=records, data_keys=data_keys)
    digest = _digest()

    warm_up = _rewrap(organization, _cmek("B-warm-up"), data_keys=data_keys)
    passes = [_rewrap(organization, _cmek(f"B{index}"), data_keys=data_keys) for index in range(rewrap_passes)]
    unchanged = _digest() == digest
    _verify(records, f"after {rewrap_passes} re-wraps (and a warm-up) through the worker")
    seconds = sorted(run.seconds for run in passes)
    rewrap_seconds = statistics.median(seconds)
    queue_wait = statistics.median(run.queue_wait for run in passes)
    reencrypts = max(run.reencrypts for run in passes)

    full_seconds, rewritten = _full_reencryption(key, _cmek("C"))
    _verify(records, "after full re-encryption")

    speedup = full_seconds / rewrap_seconds
    chart = f"Key replacement, {records:,} records / {data_keys} data keys: records re-keyed per second"
    ttl = float(revocation_ttl if revocation_ttl is not None else settings.DATAKEY_CACHE_TTL)
    revocation = _revocation(organization, ttl=ttl)
    return {
        "name": NAME if database == "sqlite" else f"{NAME}_{database}",
        "description": f"replacing the key of {records:,} records under {data_keys} data keys on "
                       f"{DATABASES[database]}; revocation latency",
        "figures": [
            figure(f"re-wrap (ReEncrypt per data key): time, median of {rewrap_passes} passes", rewrap_seconds, "s"),
            figure("re-wrap: fastest pass", seconds[0], "s"),
            figure("re-wrap: slowest pass", seconds[-1], "s"),
            figure("re-wrap: wait for the worker to take the task (enqueued → started), median", queue_wait, "s"),
            figure("re-wrap: the job's run in the worker (RewrapJob started → finished), median",
                   statistics.median(run.job_run for run in passes), "s"),
            figure("re-wrap: KMS ReEncrypt call latency as the worker saw it, median",
                   statistics.median(run.kms_call_ms for run in passes), "ms"),
            figure("re-wrap: first task of a just-started worker (warm-up, not in the median)", warm_up.seconds, "s"),
            figure("full re-encryption (decrypt + encrypt every record): time", full_seconds, "s"),
            figure("re-wrap: records/s", records / rewrap_seconds, "records/s", chart_group=chart),
            figure("full re-encryption: records/s", records / full_seconds, "records/s", chart_group=chart),
            figure("re-wrap speed-up over full re-encryption", speedup, "×", target=f"≥ {TARGET_SPEEDUP:g}×",
                   met=speedup >= TARGET_SPEEDUP),
            figure("re-wrap: time per data key (KMS call + its share of a batched commit)",
                   1000 * rewrap_seconds / data_keys, "ms"),
            figure("full re-encryption: time per record", 1000 * full_seconds / records, "ms"),
            figure("re-wrap: KMS ReEncrypt calls per pass (most in any pass)", reencrypts, "calls",
                   target=f"= {data_keys} (one per data key)", met=all(run.reencrypts == data_keys for run in passes)),
            figure("re-wrap: records rewritten", 0 if unchanged else records, "records", target="0", met=unchanged),
            figure("full re-encryption: records rewritten", rewritten, "records"),
            *revocation,
        ],
        "parameters": {"records": records, "data_keys": data_keys, "value_bytes": VALUE_BYTES, "batch": BATCH,
                       "rewrap_passes": rewrap_passes, "database": DATABASES[database],
                       "rewrap_runs_in": f"manage.py db_worker --interval {WORKER_INTERVAL:g} (django-tasks-db)",
                       "rewrap_kms_concurrency": settings.KEY_REWRAP_CONCURRENCY,
                       "kms": "local KMS server over HTTP/1.1 keep-alive (loopback)"},
        "rewrap_pass_seconds": [run.seconds for run in passes],
        "rewrap_pass_queue_wait_seconds": [run.queue_wait for run in passes],
        "notes": [
            "The re-wrap runs where production runs it: `replace_key` (what the Replace key page calls) enqueues "
            "`rewrap_job` on the database queue, and a separate `manage.py db_worker` process runs it. Its time is "
            "the queue's enqueued_at → finished_at: the wait for the worker's next poll (--interval "
            f"{WORKER_INTERVAL:g} s; the default is 1 s, which adds half a second on average), claiming the task, "
            "the run, and storing the result.",
            "KEY_REWRAP_SETTLE_SECONDS = 0 (bench/settings.py): the fixed pause a run makes for data keys other web "
            "processes may create under the old key just after the switch; here nothing writes during a pass.",
            "Re-wrapped data keys are committed 25 per transaction (KEY_REWRAP_COMMIT_EVERY; each still under "
            "exactly one key); the per-data-key time is mostly the KMS round trip to the local server, which "
            "runs in its own process.",
            f"Both contenders talk to the same local KMS over HTTP and the same database ({DATABASES[database]}); "
            "a real AWS KMS adds "
            "network latency per call, which favours the re-wrap further (D calls instead of ≥ D).",
            "The full re-encryption baseline is the best case for that approach: batched, bulk_update, one KMS "
            "Decrypt per old data key and one GenerateDataKey per scope; platforms calling KMS per record are "
            "slower still.",
            "Revocation: worst case for the TTL (the reader's cache was filled the moment the key was revoked); "
            f"poll interval {POLL_SECONDS * 1000:g} ms.",
        ],
    }


def _write(organization, *, records: int, data_keys: int) -> None:
    from tests.testapp.models import SealedNote

    progress(f"rewrap: writing {records:,} records across {data_keys} data keys")
    per_scope = -(-records // data_keys)
    for start in range(0, records, BATCH):
        batch = [
            SealedNote(organization=organization, scope_ref=f"scope-{index // per_scope:03d}", title=str(index),
                       text=_value(index))
            for index in range(start, min(records, start + BATCH))
        ]
        SealedNote.objects.bulk_create(batch)


def _digest() -> str:
    from tests.testapp.models import SealedNote

    digest = hashlib.sha256()
    for pk, envelope in SealedNote.objects.order_by("pk").values_list("pk", "text").iterator(chunk_size=BATCH):
        digest.update(pk.bytes + bytes(envelope))
    return digest.hexdigest()


@dataclass(frozen=True)
class RewrapRun:
    seconds: float  # enqueued → finished, by the queue's timestamps
    queue_wait: float  # enqueued → a worker started it
    job_run: float  # the job's own run in the worker (RewrapJob started → finished)
    kms_call_ms: float  # median latency of this pass's ReEncrypt calls
    reencrypts: int


def _rewrap(organization, new_arn: str, *, data_keys: int) -> RewrapRun:
    """One whole key replacement as the page makes it: `replace_key` switches the key (the checklist on the new
    key, untimed) and enqueues `rewrap_job`; the worker process runs it. Timed enqueue → finished."""
    from django_tasks_db.models import DBTaskResult

    from encryption_keys import keyring
    from encryption_keys.lifecycle import replace_key
    from encryption_keys.models import KmsCall

    keyring.reset_for_tests()
    job = replace_key(organization=organization, region="us", new_key_arn=new_arn, actor=None)
    queued = DBTaskResult.objects.get(task_path="encryption_keys.tasks.rewrap_job", status="READY")
    if queued.args_kwargs["args"][0] != job.pk:
        raise RuntimeError(f"the queued re-wrap task is not job {job.pk}'s: {queued.args_kwargs}")
    progress(f"rewrap: re-wrapping {job.total} data keys to {new_arn.rsplit('/', 1)[-1]} in the worker")
    queued = _await_task(queued.pk)
    outcome = queued.return_value or {}
    if queued.status != "SUCCESSFUL" or (outcome.get("state"), outcome.get("done")) != ("completed", data_keys):
        raise RuntimeError(f"the re-wrap task ended {queued.status} with {outcome}: {queued.traceback[-2000:]}")
    job.refresh_from_db()
    # The worker stored its KMS call log before it finished the task.
    latencies = list(KmsCall.objects.filter(operation="ReEncrypt", outcome="ok", key_arn=new_arn)
                     .values_list("latency_ms", flat=True))
    return RewrapRun(
        seconds=(queued.finished_at - queued.enqueued_at).total_seconds(),
        queue_wait=(queued.started_at - queued.enqueued_at).total_seconds(),
        job_run=(job.finished_at - job.started_at).total_seconds(),
        kms_call_ms=statistics.median(latencies) if latencies else 0.0,
        reencrypts=len(latencies),
    )


def _await_task(task_id):
    from django_tasks_db.models import DBTaskResult

    deadline = time.monotonic() + WORKER_DEADLINE_SECONDS
    while True:
        queued = DBTaskResult.objects.get(pk=task_id)
        if queued.status in ("SUCCESSFUL", "FAILED"):
            return queued
        if _worker.poll() is not None or time.monotonic() > deadline:
            log = _worker_log.read_text(errors="replace")[-3000:] if _worker_log else ""
            raise RuntimeError(f"the worker did not finish the re-wrap task (exit {_worker.poll()}):\n{log}")
        time.sleep(POLL_SECONDS)


def _full_reencryption(key, new_arn: str) -> tuple[float, int]:
    """Every record read, decrypted, encrypted again under a fresh DEK of `new_arn`, written back."""
    from django.db import transaction

    from encryption_keys import keyring
    from encryption_keys.models import EncryptionKey
    from tests.testapp.models import SealedNote

    EncryptionKey.objects.filter(pk=key.pk).update(key_arn=new_arn)
    keyring.reset_for_tests()
    field = SealedNote._meta.get_field("text")
    progress("rewrap: full re-encryption of every record")
    rewritten, last_pk = 0, None
    started = time.perf_counter()
    while True:
        page = SealedNote.objects.order_by("pk")
        page = list((page.filter(pk__gt=last_pk) if last_pk else page)[:BATCH])
        if not page:
            break
        with transaction.atomic():
            for note, revealed in zip(page, keyring.reveal_many(n.text for n in page), strict=True):
                if not revealed.ok:
                    raise RuntimeError(f"record {note.title}: {revealed.error}")
                note.text = revealed.value
                field.pre_save(note, add=False)  # seals under the scope's active DEK (now under the new key)
            SealedNote.objects.bulk_update(page, ["text"])
        rewritten += len(page)
        last_pk = page[-1].pk
    return time.perf_counter() - started, rewritten


def _verify(records: int, when: str) -> None:
    from encryption_keys import keyring
    from tests.testapp.models import SealedNote

    keyring.reset_for_tests()
    checked, last_pk = 0, None
    while True:
        page = SealedNote.objects.order_by("pk")
        page = list((page.filter(pk__gt=last_pk) if last_pk else page)[:BATCH])
        if not page:
            break
        for note, revealed in zip(page, keyring.reveal_many(n.text for n in page), strict=True):
            if not revealed.ok or revealed.value != _value(int(note.title)):
                raise RuntimeError(f"{when}: record {note.title} does not reveal what was written")
        checked += len(page)
        last_pk = page[-1].pk
    if checked != records:
        raise RuntimeError(f"{when}: {checked} records, expected {records}")
    progress(f"rewrap: {when}: all {checked:,} records reveal their original plaintext")


def _revocation(organization, *, ttl: float) -> list[dict]:
    from django.conf import settings
    from django.core.cache import cache as shared_cache

    from encryption_keys import keyring
    from encryption_keys.models import EncryptionKey
    from tests.testapp.models import SealedNote

    figures = []
    for label, cache_ttl, bump in (
        (f"revocation latency, DATAKEY_CACHE_TTL = {ttl:g} s (cache expiry, worst case)", ttl, False),
        ("revocation latency, shared cache generation bumped by another process", 3600.0, True),
        ("revocation latency, DATAKEY_CACHE_TTL = 0", 0.0, False),
    ):
        arn = _cmek("revocation")
        EncryptionKey.objects.filter(organization=organization, region="us").update(key_arn=arn)
        settings.DATAKEY_CACHE_TTL = cache_ttl
        keyring.reset_for_tests()
        note = SealedNote.objects.create(organization=organization, scope_ref=f"revocation-{cache_ttl}", text="x")
        keyring.reset_for_tests()
        note = SealedNote.objects.get(pk=note.pk)
        note.text.reveal()  # the reader's cache is warm
        progress(f"rewrap: measuring {label}")
        _kms.client().disable_key(KeyId=arn)
        revoked = time.perf_counter()
        if bump:
            shared_cache.get_or_set(keyring.GENERATION_KEY, 0, timeout=None)
            shared_cache.incr(keyring.GENERATION_KEY)
        while note.text.reveal_or_error().ok:
            if time.perf_counter() - revoked > cache_ttl + 10:
                raise RuntimeError(f"{label}: still decrypting {cache_ttl + 10} s after revocation")
            time.sleep(POLL_SECONDS)
        latency = time.perf_counter() - revoked
        bound = keyring.GENERATION_CHECK_SECONDS if bump else cache_ttl
        figures.append(figure(label, latency, "s", target=f"≤ {bound:g} s + 0.5 s", met=latency <= bound + 0.5))
    return figures
