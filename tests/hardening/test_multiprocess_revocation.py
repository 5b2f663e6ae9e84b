"""Revocation reaches every web process through the shared cache (Redis), as production runs it.

Two gunicorn processes serve a data plane's `{vault://…}` resolution from the data key each has cached. The key
is disabled in the local KMS: both keep serving (their cache holds the data key for DATAKEY_CACHE_TTL=300 s).
A third process runs `manage.py check_keys`; it bumps the generation counter in Redis, and both web processes
refuse with `key_disabled` within a second of the bump (and of check_keys returning) — long before their cache
would have expired, so only the counter can have told them. Without a shared cache they keep serving.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from devtools import local_kms
from encryption_keys import keyring
from encryption_keys.models import EncryptionKey
from konnect_admin import services as platform
from konnect_admin import tokens
from tests import leaks
from vault import services

CACHE_TTL = 300  # the web processes' DATAKEY_CACHE_TTL: far beyond anything this test waits for
REVOCATION_BOUND = 1.0  # seconds from check_keys revoking (and from it returning) until both web processes refuse

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    at: float  # time.monotonic() when the answer arrived
    took: float  # seconds from asking to the answer
    status: int
    outcome: str  # "value" (the secret, as stored), or the error code


class DataPlane(threading.Thread):
    """A data plane resolving one reference through one web process; run as a thread, it asks again and again
    and keeps every answer."""

    def __init__(self, url: str, token: str, expected: str):
        super().__init__(daemon=True)
        self.url, self.token, self.expected = f"{url}/api/us/v1/vault/resolve", token, expected
        self.answers: list[Answer] = []
        self.stopping = threading.Event()

    def resolve(self) -> Answer:
        request = urllib.request.Request(  # noqa: S310 - a loopback URL this test built
            self.url, data=json.dumps({"references": ["{vault://pay/stripe}"]}).encode(), method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        asked = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                status, body = response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            status, body = error.code, json.loads(error.read() or b"{}")
        except OSError as error:
            return Answer(time.monotonic(), time.monotonic() - asked, 0, f"no answer: {error}")
        if status == 200:
            [result] = body["results"]
            outcome = "value" if result.get("value") == self.expected else f"200 {result.get('error', {}).get('code')}"
        else:
            outcome = body.get("code") or body.get("title") or "?"
        return Answer(time.monotonic(), time.monotonic() - asked, status, outcome)

    def run(self) -> None:
        while not self.stopping.is_set():
            self.answers.append(self.resolve())
            self.stopping.wait(0.02)

    def first_refusal(self) -> Answer | None:
        return next((answer for answer in list(self.answers) if answer.outcome != "value"), None)

    def answers_since(self, moment: float) -> list[Answer]:
        return [answer for answer in list(self.answers) if answer.at >= moment]


class CounterWatch(threading.Thread):
    """Notes when the generation counter first appears in Redis: the moment check_keys revoked everywhere."""

    def __init__(self, redis_cache):
        super().__init__(daemon=True)
        self.redis_cache, self.bumped_at, self.stopping = redis_cache, None, threading.Event()

    def run(self) -> None:
        while self.bumped_at is None and not self.stopping.is_set():
            if self.redis_cache.value(keyring.GENERATION_KEY) is not None:
                self.bumped_at = time.monotonic()
            self.stopping.wait(0.005)


def test_check_keys_in_a_third_process_makes_both_web_processes_refuse_within_a_second(
    django_processes, redis_cache, org, org_admin, cmek,
):
    EncryptionKey.objects.create(organization=org, region="us", name="customer key", key_ref=cmek)
    control_plane = platform.control_plane_create(organization=org, actor=org_admin, name="payments", region="us")
    store = services.config_store_create(actor=org_admin, control_plane=control_plane, name="payments")
    value = leaks.plant("multiprocess-revocation-s3cr3t")
    services.secret_create(actor=org_admin, store=store, key="stripe", value=value)
    services.vault_create(actor=org_admin, control_plane=control_plane, prefix="pay", config_store=store)
    _token, token_text = tokens.data_plane_token_create(actor=org_admin, control_plane=control_plane, name="dp")

    env = {**redis_cache.env, "DATAKEY_CACHE_TTL": str(CACHE_TTL)}
    data_planes = [DataPlane(django_processes.web(f"web-{n}", **env), token_text, value) for n in (1, 2)]
    for data_plane in data_planes:  # each web process unwraps the data key once (KMS Decrypt) and caches it
        assert data_plane.resolve().outcome == "value", django_processes.logs()
    warmed = time.monotonic()

    local_kms.disable_key(cmek)
    assert redis_cache.value(keyring.GENERATION_KEY) is None  # nothing has revoked anything yet
    watch = CounterWatch(redis_cache)
    threads = [watch, *data_planes]
    for thread in threads:
        thread.start()
    try:
        django_processes.wait_until(lambda: all(len(dp.answers) >= 3 for dp in data_planes),
                                    what="both web processes answered with the key disabled", timeout=60)
        check_started = time.monotonic()
        check = django_processes.start("check_keys", "check_keys", **env)
        assert check.wait(timeout=120) == 0, django_processes.logs()
        check_returned = time.monotonic()
        django_processes.wait_until(
            lambda: all(dp.first_refusal() and len(dp.answers_since(dp.first_refusal().at)) >= 5 for dp in data_planes),
            what="both web processes refuse", timeout=60,
        )
    finally:
        for thread in threads:
            thread.stopping.set()
        for thread in threads:
            thread.join(timeout=90)

    assert "→ disabled" in (django_processes.log_dir / "check_keys.log").read_text()
    assert watch.bumped_at is not None and check_started < watch.bumped_at < check_returned  # through Redis
    for number, data_plane in enumerate(data_planes, start=1):
        summary = [(round(a.at - watch.bumped_at, 3), round(a.took, 3), a.status, a.outcome) for a in data_plane.answers]
        before = [answer for answer in data_plane.answers if answer.at < check_started]
        assert before and all(answer.outcome == "value" for answer in before), summary  # the cached data key served
        refusal = data_plane.first_refusal()
        assert (refusal.status, refusal.outcome) == (409, "key_disabled"), summary
        assert all((a.status, a.outcome) == (409, "key_disabled") for a in data_plane.answers_since(refusal.at)), summary
        assert refusal.at - warmed < CACHE_TTL  # its cached data key had not expired: the counter told it
        after_bump, after_return = refusal.at - watch.bumped_at, refusal.at - check_returned
        logger.info("web-%d refused %.3f s after the counter was bumped, %.3f s after check_keys returned "
                    "(check_keys ran %.3f s)", number, after_bump, after_return, check_returned - check_started)
        assert after_bump <= REVOCATION_BOUND, f"web-{number} refused {after_bump:.3f} s after the bump: {summary}"
        assert after_return <= REVOCATION_BOUND, summary
    assert value not in django_processes.logs()
