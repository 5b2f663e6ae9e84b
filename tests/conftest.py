"""Fixtures for the whole suite. Nothing here imports Django at module level: the envelope core's tests
(`make test-envelope`, `pytest tests/encryption_keys/envelope -p no:django`) load this file without Django settings.

The local KMS is opt-in: a test that calls KMS requests `local_kms` — as an argument (of the test or of a fixture it
uses, e.g. `cmek`), by `pytest.mark.usefixtures("local_kms")` on its module, or through a directory's conftest that
makes it autouse there (tests/encryption_keys but its envelope/, tests/debugger, tests/vault). A test that does none
of these never starts the server."""

import os

import pytest

from tests import leaks


def pytest_addoption(parser, pluginmanager):
    """pyproject's `DJANGO_SETTINGS_MODULE` is pytest-django's option; with `-p no:django` (the envelope core's run)
    pytest would warn that it does not know it."""
    if not pluginmanager.has_plugin("django"):
        parser.addini("DJANGO_SETTINGS_MODULE", "Django settings module (pytest-django); unused under -p no:django")


@pytest.fixture(scope="session", autouse=True)
def session_log_capture():
    """Capture every log record of the session (see tests/leaks.py)."""
    leaks.install()
    return leaks.capture


def pytest_collection_modifyitems(session, config, items):
    last = [item for item in items if item.module.__name__.endswith("test_zz_no_plaintext_in_logs")]
    items[:] = [item for item in items if item not in last] + last


@pytest.fixture
def org(db):
    from tests import factories

    return factories.make_organization("Acme")


@pytest.fixture
def other_org(db):
    from tests import factories

    return factories.make_organization("Globex")


@pytest.fixture
def control_plane(org):
    from tests import factories

    return factories.make_control_plane(org, name="payments", region="us")


@pytest.fixture
def other_control_plane(other_org):
    from tests import factories

    return factories.make_control_plane(other_org, name="globex-internal", region="us")


@pytest.fixture
def org_admin(org):
    from tests import factories

    return factories.make_role_user(org, "org_admin")


@pytest.fixture
def other_org_admin(other_org):
    from tests import factories

    return factories.make_role_user(other_org, "org_admin")


@pytest.fixture
def login(client):
    """`login(user)` → a Django test client logged in as that user."""

    def _login(user):
        client.force_login(user)
        return client

    return _login


# --- local KMS over HTTP -------------------------------------------------------------------------------

PLATFORM_KEY_REGIONS = {"us": "us-west-2", "eu": "eu-central-1"}


@pytest.fixture(scope="session")
def kms_server():
    """moto's KMS server with the fidelity layer, on loopback, for the whole test session. Its caller is the
    platform principal: a key policy naming that principal (the Link key page's statements) is enforced."""
    from django.conf import settings

    from devtools.local_kms import LocalKmsServer

    server = LocalKmsServer(caller_principal=settings.PLATFORM_KMS_PRINCIPAL).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def platform_keys(kms_server):
    from devtools.local_kms import create_key

    return {
        geo: create_key(region=region, description=f"platform key {geo}", multi_region=True)
        for geo, region in PLATFORM_KEY_REGIONS.items()
    }


@pytest.fixture
def local_kms(settings, kms_server, platform_keys):
    """This test talks to the local KMS server over HTTP (started once for the session, restarted if a test
    stopped it), with the platform keys and fresh in-process key caches."""
    from encryption_keys import call_log, key_state, keyring
    from encryption_keys.providers.aws import kms

    settings.KMS_ENDPOINT_URL = kms_server.endpoint_url
    settings.KMS_ENDPOINT_URLS = {}
    settings.PLATFORM_KMS_KEYS = dict(platform_keys)
    settings.KMS_MAX_ATTEMPTS = 1
    settings.KMS_CONNECT_TIMEOUT = 1
    kms.reset_clients()
    keyring.reset_for_tests()
    call_log.discard()
    key_state.discard()
    if not kms_server.running:
        kms_server.start()
    yield kms_server
    call_log.discard()
    keyring.reset_for_tests()


@pytest.fixture
def kms_calls(db):
    """`kms_calls(**filters)` → the KmsCall rows written so far (flushes the buffered log first)."""
    from encryption_keys import call_log
    from encryption_keys.models import KmsCall

    def _calls(**filters):
        call_log.flush()
        return KmsCall.objects.filter(**filters)

    return _calls


@pytest.fixture
def cmek(org, local_kms):
    """A fresh customer key in us-west-2 (multi-region, replicated to us-east-2), not linked yet."""
    from devtools.local_kms import create_key, replicate_key

    arn = create_key(region="us-west-2", description="customer key", multi_region=True)
    replicate_key(arn, to_region="us-east-2")
    return arn


@pytest.fixture
def django_processes(transactional_db, tmp_path, local_kms, platform_keys, settings):
    """Start worker/scheduler processes on this test's database (committed data: a transactional test) and
    enqueue onto the database backend they read; every process is stopped after the test."""
    from tests.processes import Processes, process_env

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    processes = Processes(tmp_path, process_env(kms_endpoint_url=local_kms.endpoint_url, platform_keys=platform_keys))
    yield processes
    processes.stop_all()


# --- OpenBao, the Transit key provider's server ------------------------------------------------------------

@pytest.fixture(scope="session")
def openbao(tmp_path_factory):
    """A real OpenBao dev server on loopback for the session (tests/openbao.py); opt-in: only the Transit
    tests ask for it. Transit and AppRole are enabled; each test creates its own keys, policies and tokens."""
    from tests.openbao import OpenBaoDevServer

    server = OpenBaoDevServer(tmp_path_factory.mktemp("openbao")).start()
    yield server
    server.stop()


# --- Redis, the shared cache of production ---------------------------------------------------------------

REDIS_URL = "redis://127.0.0.1:6379/0"


class RedisCache:
    """Redis as Django's cache for the processes a test starts, under a key prefix of that test alone (runs side
    by side share the server). `env` is what to give those processes; `value(key)` reads what they stored."""

    def __init__(self, client, prefix: str):
        self.client, self.prefix = client, prefix
        self.env = {"CACHE_URL": REDIS_URL, "CACHE_KEY_PREFIX": prefix}

    def value(self, key: str) -> bytes | None:
        return self.client.get(f"{self.prefix}:1:{key}")  # Django's key format: prefix, version 1, key

    def delete_all(self) -> None:
        for key in self.client.scan_iter(match=f"{self.prefix}:*"):
            self.client.delete(key)


@pytest.fixture
def redis_cache():
    """Redis at 127.0.0.1:6379 (.ci/run starts it). Unreachable Redis fails the test, never skips it; only this
    test's keys are deleted afterwards."""
    import uuid

    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({error}); start it with `redis-server --daemonize yes`",
                    pytrace=False)
    cache = RedisCache(client, prefix=f"konnect-test-{uuid.uuid4().hex}")
    yield cache
    cache.delete_all()
    client.close()


@pytest.fixture
def kms_gate(local_kms):
    """`kms_gate("ReEncrypt", allow=3)`: the local KMS answers 3 such calls, then holds the rest (tests/kms_gate.py)."""
    from tests.kms_gate import KmsGate

    gates = []

    def gate(operation, *, allow):
        gates.append(KmsGate(local_kms._httpd, operation, allow=allow))
        return gates[-1]

    yield gate
    for made in reversed(gates):
        made.remove()


# --- one Chromium for the session (tests/browser, tests/install) ---------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium through Playwright's sync API, one per session: a second `sync_playwright()` while one is
    open fails ("Sync API inside the asyncio loop"), so every browser test, wherever it lives, shares this one."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make between
    # browser steps are synchronous and safe here.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()
