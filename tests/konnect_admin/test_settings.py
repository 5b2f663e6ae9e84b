"""The settings modules, each imported in a fresh interpreter with a crafted environment, as a deployment would.

Production (konnect_admin.settings) refuses every unsafe configuration with one line saying what to set; no
environment variable turns it into a development or test mode; the development module refuses to be deployed.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from konnect_admin.settings_checks import development_secret_key

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_SECRET = "a-production-like-secret-key-that-is-long-and-random-0123456789-abcdefghij"
PRODUCTION_ENV = {
    "KONNECT_SECRET_KEY": PRODUCTION_SECRET,
    "KONNECT_ALLOWED_HOSTS": "admin.example.com",
    "KONNECT_PLATFORM_KMS_KEYS": "us=arn:aws:kms:us-west-2:111122223333:key/mrk-0123456789abcdef0123456789abcdef",
    "KONNECT_PLATFORM_KMS_PRINCIPAL": "arn:aws:iam::210987654321:role/konnect-admin-cmek",
    "KONNECT_CACHE_URL": "redis://127.0.0.1:6379/0",
}
# Imports one settings module; prints the requested settings as JSON, or the refusal's text and exits 3.
PROBE = """
import importlib, json, sys
from django.core.exceptions import ImproperlyConfigured
try:
    module = importlib.import_module(sys.argv[1])
except ImproperlyConfigured as error:
    print(json.dumps(str(error)), file=sys.stderr)
    sys.exit(3)
print(json.dumps({name: getattr(module, name, None) for name in sys.argv[2:]}, default=str))
"""
WITHOUT_REDIS = "import sys; sys.modules['redis'] = None\n"  # as if the client package were not installed


def clean_environment(env: dict) -> dict:
    """The test run's environment without any setting (KONNECT_<NAME> or <NAME>), plus `env`."""
    names = {"DEBUG", "TESTING", "SECRET_KEY", "ALLOWED_HOSTS", "PLATFORM_KMS_KEYS", "PLATFORM_KMS_PRINCIPAL",
             "CACHE_URL", "CACHE_BACKEND", "CACHE_LOCATION", "KMS_ENDPOINT_URL", "KMS_ENDPOINT_URLS",
             "LOGIN_PROXY_COUNT"}
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("KONNECT_", "DJANGO_")) and k not in names}
    return {**kept, "KONNECT_ENV_FILE": os.devnull, **env}  # never the developer's .env (`make run` writes one)


def import_settings(module: str, env: dict, *names: str, prelude: str = ""):
    result = subprocess.run(
        [sys.executable, "-c", prelude + PROBE, module, *names],
        cwd=ROOT, env=clean_environment(env), capture_output=True, text=True, timeout=120,
    )
    if result.returncode == 3:
        return None, json.loads(result.stderr.strip().splitlines()[-1])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), None


def refusal(module: str, env: dict, *, prelude: str = "") -> str:
    values, message = import_settings(module, env, "SECRET_KEY", prelude=prelude)
    assert message is not None, f"{module} started with {env}: {values}"
    assert "\n" not in message
    return message


def without(*names: str, **extra: str) -> dict:
    return {**{k: v for k, v in PRODUCTION_ENV.items() if k not in names}, **extra}


# --- production refuses ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (without("KONNECT_SECRET_KEY"), "SECRET_KEY is required: set it to 50+ random characters"),
        (without(KONNECT_SECRET_KEY="change-me-to-50-random-characters"), "SECRET_KEY is too weak: set it"),
        (without("KONNECT_PLATFORM_KMS_KEYS"), "PLATFORM_KMS_KEYS is required: set one platform KMS key ARN"),
        (without("KONNECT_PLATFORM_KMS_PRINCIPAL"), "PLATFORM_KMS_PRINCIPAL is required: set the platform's IAM role ARN"),
        # The old default, which the Link key page told customers to trust.
        (without(KONNECT_PLATFORM_KMS_PRINCIPAL="arn:aws:iam::123456789012:role/konnect-admin-cmek"),
         "PLATFORM_KMS_PRINCIPAL names the example AWS account 123456789012: set the platform's own IAM role ARN"),
        # .env.example's value, copied as is.
        (without(KONNECT_PLATFORM_KMS_PRINCIPAL="arn:aws:iam::111122223333:role/konnect-admin-cmek"),
         "example AWS account 111122223333"),
        (without(KONNECT_PLATFORM_KMS_PRINCIPAL="konnect-admin"), "PLATFORM_KMS_PRINCIPAL must be an IAM role or user ARN"),
        (without("KONNECT_CACHE_URL"), "the cache django.core.cache.backends.locmem.LocMemCache is not shared"),
        (without("KONNECT_CACHE_URL", KONNECT_CACHE_BACKEND="django.core.cache.backends.locmem.LocMemCache"),
         "LocMemCache is not shared by every worker, so a key revocation would not reach them: set CACHE_URL=redis://"),
        (without("KONNECT_CACHE_URL", KONNECT_CACHE_BACKEND="django.core.cache.backends.dummy.DummyCache"),
         "DummyCache is not shared"),
        (without("KONNECT_CACHE_URL", KONNECT_CACHE_BACKEND="django.core.cache.backends.filebased.FileBasedCache",
                 KONNECT_CACHE_LOCATION="var/cache"), "FileBasedCache is not shared"),
        (without("KONNECT_CACHE_URL", KONNECT_CACHE_BACKEND="django.core.cache.backends.memcached.PyMemcacheCache",
                 KONNECT_CACHE_LOCATION="127.0.0.1:11211"),
         "needs the Python package 'pymemcache', which is not installed: pip install pymemcache"),
        (without(KONNECT_CACHE_URL="memcached://127.0.0.1:11211"), "CACHE_URL must be a redis://, rediss:// or unix:// URL"),
        (without(KONNECT_CACHE_BACKEND="django.core.cache.backends.db.DatabaseCache"),
         "Set either CACHE_URL or CACHE_BACKEND/CACHE_LOCATION, not both"),
        (without(DEBUG="true"), "DEBUG is on: production settings never run in debug mode; unset DEBUG"),
        (without(KONNECT_DEBUG="1"), "DEBUG is on"),
        (without(KONNECT_TASKS_BACKEND="immediate"), "TASKS_BACKEND=immediate runs key replacements and sweeps inside"),
    ],
    ids=["no-secret-key", "weak-secret-key", "no-platform-keys", "no-principal", "placeholder-principal",
         "example-principal", "malformed-principal", "no-cache", "locmem-cache", "dummy-cache", "file-cache",
         "memcached-without-client", "cache-url-not-redis", "cache-url-and-backend", "debug", "konnect-debug",
         "immediate-tasks"],
)
def test_production_refuses_to_start(env, expected):
    assert expected in refusal("konnect_admin.settings", env)


def test_production_refuses_redis_cache_without_the_redis_client():
    message = refusal("konnect_admin.settings", PRODUCTION_ENV, prelude=WITHOUT_REDIS)
    assert "the cache django.core.cache.backends.redis.RedisCache needs the Python package 'redis'" in message
    assert "pip install redis" in message


def test_production_names_every_problem_on_one_line():
    message = refusal("konnect_admin.settings", {"KONNECT_ALLOWED_HOSTS": "admin.example.com"})
    assert message.startswith("Production settings refused: ")
    for name in ("SECRET_KEY", "PLATFORM_KMS_KEYS", "PLATFORM_KMS_PRINCIPAL", "CACHE_URL"):
        assert name in message


def test_manage_py_exits_with_the_one_line_explanation():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=clean_environment(without("KONNECT_PLATFORM_KMS_PRINCIPAL")),
    )
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # the explanation, no traceback
    assert result.stderr.startswith("Production settings refused: ")
    assert "PLATFORM_KMS_PRINCIPAL is required" in result.stderr


# --- production accepts, and no environment variable softens it -----------------------------------------

SECURITY = ("DEBUG", "SECRET_KEY", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
            "SECURE_SSL_REDIRECT", "PLATFORM_KMS_KEYS", "ALLOWED_HOSTS", "CACHES")


@pytest.mark.parametrize(
    "extra", [{}, {"TESTING": "1"}, {"KONNECT_TESTING": "true"}, {"DEBUG": "false"}],
    ids=["plain", "TESTING", "KONNECT_TESTING", "DEBUG-false"],
)
def test_production_stays_production_whatever_the_environment_says(extra):
    values, message = import_settings("konnect_admin.settings", {**PRODUCTION_ENV, **extra}, *SECURITY)
    assert message is None
    assert values["DEBUG"] is False
    assert values["SECRET_KEY"] == PRODUCTION_SECRET
    assert values["SECURE_HSTS_SECONDS"] == 31536000
    assert values["SESSION_COOKIE_SECURE"] is True and values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["PLATFORM_KMS_KEYS"] == {"us": PRODUCTION_ENV["KONNECT_PLATFORM_KMS_KEYS"].removeprefix("us=")}
    assert values["ALLOWED_HOSTS"] == ["admin.example.com"]
    assert values["CACHES"]["default"] == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/0",
    }


@pytest.mark.parametrize("switch", [{"TESTING": "1"}, {"KONNECT_TESTING": "true"}, {"DEBUG": "true"}])
def test_no_environment_variable_replaces_a_missing_secret_key(switch):
    message = refusal("konnect_admin.settings", without("KONNECT_SECRET_KEY", **switch))
    assert "SECRET_KEY is required" in message


def test_the_database_cache_is_accepted_as_shared():
    env = without("KONNECT_CACHE_URL", KONNECT_CACHE_BACKEND="django.core.cache.backends.db.DatabaseCache",
                  KONNECT_CACHE_LOCATION="konnect_cache")
    values, message = import_settings("konnect_admin.settings", env, "CACHES")
    assert message is None
    assert values["CACHES"]["default"]["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"


def test_check_deploy_is_clean_under_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=clean_environment(PRODUCTION_ENV), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


LOCAL_ENV = {"KONNECT_KMS_ENDPOINT_URL": "http://127.0.0.1:4566", "KONNECT_PLATFORM_KMS_KEYS": "us=arn:aws:kms:x"}


@pytest.mark.parametrize(
    ("module", "env", "expected"),
    [
        ("konnect_admin.settings", PRODUCTION_ENV, 1),  # behind the TLS proxy whose X-Forwarded-Proto it trusts
        ("konnect_admin.settings", {**PRODUCTION_ENV, "KONNECT_LOGIN_PROXY_COUNT": "2"}, 2),
        ("konnect_admin.settings", {**PRODUCTION_ENV, "LOGIN_PROXY_COUNT": "0"}, 0),  # served directly
        ("konnect_admin.settings_dev", LOCAL_ENV, 0),
        ("tests.settings", LOCAL_ENV, 0),
    ],
    ids=["production-default", "production-two-proxies", "production-no-proxy", "development", "tests"],
)
def test_production_counts_log_in_failures_per_client_behind_its_proxy(module, env, expected):
    """At 0 behind a proxy every client has the proxy's address: ten bad log-ins would lock everybody out."""
    values, message = import_settings(module, env, "LOGIN_PROXY_COUNT")
    assert message is None and values["LOGIN_PROXY_COUNT"] == expected


# --- e-mail: EMAIL_BACKEND picks the backend, and only that backend's options are passed ---------------------

SEND_ONE = """
import django
django.setup()
from django.core import mail
mail.send_mail("Invitation", "Open the link", "from@example.com", ["to@example.com"])
"""


@pytest.mark.parametrize("backend", ["console", "filebased"])
def test_production_sends_mail_through_the_backend_the_environment_names(tmp_path, backend):
    """The SMTP options (host, port, …) go to the SMTP backend only: another backend refuses options it does not
    know (Django's MAILERS), so EMAIL_BACKEND=console used to fail every send."""
    env = {**PRODUCTION_ENV, "DJANGO_SETTINGS_MODULE": "konnect_admin.settings",
           "EMAIL_BACKEND": f"django.core.mail.backends.{backend}.EmailBackend", "EMAIL_FILE_PATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", SEND_ONE], cwd=ROOT, env=clean_environment(env),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    written = result.stdout if backend == "console" else "".join(p.read_text() for p in tmp_path.glob("*.log"))
    assert "Subject: Invitation" in written and "To: to@example.com" in written


# --- .env at the project root: fills in what the environment leaves unset -------------------------------

def write_env_file(path, env: dict) -> str:
    path.write_text("".join(f"{name.removeprefix('KONNECT_')}={value}\n" for name, value in env.items()))  # unquoted: ${…} stays literal
    return str(path)


def test_production_reads_what_the_environment_leaves_unset_from_the_env_file(tmp_path):
    secret = "a-secret-with-$HOME-and-${USER}-in-it-that-is-long-and-random-0123456789"  # taken literally
    env_file = write_env_file(tmp_path / ".env", {**PRODUCTION_ENV, "SECRET_KEY": secret,
                                                   "ALLOWED_HOSTS": "from-the-file.example.com"})
    values, message = import_settings(
        "konnect_admin.settings", {"KONNECT_ENV_FILE": env_file, "ALLOWED_HOSTS": "admin.example.com"},
        "SECRET_KEY", "ALLOWED_HOSTS", "PLATFORM_KMS_KEYS",
    )
    assert message is None
    assert values["SECRET_KEY"] == secret
    assert values["ALLOWED_HOSTS"] == ["admin.example.com"]  # the environment wins over the file
    assert values["PLATFORM_KMS_KEYS"] == {"us": PRODUCTION_ENV["KONNECT_PLATFORM_KMS_KEYS"].removeprefix("us=")}


def test_production_still_refuses_what_the_env_file_leaves_unsafe(tmp_path):
    env_file = write_env_file(tmp_path / ".env", without("KONNECT_SECRET_KEY"))
    message = refusal("konnect_admin.settings", {"KONNECT_ENV_FILE": env_file})
    assert message.startswith("Production settings refused: SECRET_KEY is required")


def test_the_tests_never_read_an_env_file(tmp_path):
    env_file = write_env_file(tmp_path / ".env", {"KMS_ENDPOINT_URL": "http://127.0.0.1:1", "DATABASE_URL": "x://"})
    values, message = import_settings("tests.settings", {"KONNECT_ENV_FILE": env_file}, "KMS_ENDPOINT_URL")
    assert message is None and values["KMS_ENDPOINT_URL"] is None


PRINT_SETTINGS = "from django.conf import settings; print(settings.SETTINGS_MODULE, settings.DEBUG)"


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "konnect_admin.settings_dev True"),
     ({"DJANGO_SETTINGS_MODULE": "konnect_admin.settings", **PRODUCTION_ENV}, "konnect_admin.settings False")],
    ids=["from-the-file", "the-environment-wins"],
)
def test_manage_py_takes_the_settings_module_from_the_env_file(tmp_path, env, expected):
    env_file = write_env_file(tmp_path / ".env", {"DJANGO_SETTINGS_MODULE": "konnect_admin.settings_dev",
                                                   "KMS_ENDPOINT_URL": "http://127.0.0.1:4566"})
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", PRINT_SETTINGS], cwd=ROOT, capture_output=True,
        text=True, timeout=120, env={"PATH": os.environ["PATH"], "KONNECT_ENV_FILE": env_file, **env},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


# --- development: never deployable by accident -----------------------------------------------------------

def test_development_module_refuses_a_public_host_name():
    message = refusal("konnect_admin.settings_dev", PRODUCTION_ENV)
    assert message == (
        "konnect_admin.settings_dev serves loopback only, but ALLOWED_HOSTS names 'admin.example.com': "
        "deploy with konnect_admin.settings (the default)."
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (without("KONNECT_ALLOWED_HOSTS"), "talks to a local KMS only (KMS_ENDPOINT_URL on loopback), never to AWS KMS"),
        ({"KONNECT_KMS_ENDPOINT_URL": "https://kms.us-west-2.amazonaws.com"}, "talks to a local KMS only"),
        ({"KONNECT_KMS_ENDPOINT_URLS": "us-east-2=https://kms.us-east-2.amazonaws.com"}, "talks to a local KMS only"),
    ],
    ids=["aws-platform-keys", "aws-endpoint", "aws-region-endpoint"],
)
@pytest.mark.parametrize("module", ["konnect_admin.settings_dev", "tests.settings"])
def test_development_and_test_modules_refuse_a_production_environment(module, env, expected):
    message = refusal(module, env)
    assert message.startswith(module)
    assert expected in message
    assert "deploy with konnect_admin.settings" in message


def test_development_module_runs_on_loopback_with_a_generated_secret_key():
    env = {"KONNECT_KMS_ENDPOINT_URL": "http://127.0.0.1:4566", "KONNECT_PLATFORM_KMS_KEYS": "us=arn:aws:kms:x"}
    first, _ = import_settings("konnect_admin.settings_dev", env, "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS")
    second, _ = import_settings("konnect_admin.settings_dev", {}, "SECRET_KEY")
    assert first["DEBUG"] is True
    assert first["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost", "[::1]"]
    assert first["SECRET_KEY"] == second["SECRET_KEY"] == (ROOT / "var" / "development-secret-key").read_text()
    sources = [path.read_text() for path in (ROOT / "konnect_admin").glob("settings*.py")]
    assert not any(first["SECRET_KEY"] in source for source in sources)


def test_development_secret_key_is_generated_once_and_private(tmp_path):
    path = tmp_path / "var" / "development-secret-key"
    key = development_secret_key(path)
    assert len(key) >= 50
    assert development_secret_key(path) == key
    assert path.stat().st_mode & 0o777 == 0o600
    assert list(path.parent.iterdir()) == [path]  # no draft left behind
    assert development_secret_key(tmp_path / "other") != key
