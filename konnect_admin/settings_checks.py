"""What each settings mode refuses, in one line that says what to set.

Production (konnect_admin.settings) refuses to start without its secrets, with the placeholder principal, or
with a cache its workers do not share. Development (konnect_admin.settings_dev) refuses anything beyond
loopback, so it cannot be deployed by accident. Imported by settings modules: no Django app imports here.
"""

import importlib
import ipaddress
import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

# The principal the local KMS, the demo and the tests use: an AWS documentation account, never a real one.
PLACEHOLDER_KMS_PRINCIPAL = "arn:aws:iam::123456789012:role/konnect-admin-cmek"
# Account ids AWS uses in its documentation; a principal in one of them is a copied example.
EXAMPLE_AWS_ACCOUNTS = frozenset({"000000000000", "123456789012", "111122223333", "444455556666", "777788889999"})
IAM_PRINCIPAL = re.compile(r"arn:aws(?:-cn|-us-gov)?:iam::(?P<account>\d{12}):(?:root|(?:role|user)/[\w+=,.@/-]+)")

# Backends every worker on every host reads alike, so `invalidate_everywhere`'s generation counter reaches
# them all; value: the client package the backend imports on first use (None: the database connection).
# Refused: local memory (one process), dummy (stores nothing), file-based (one host; a replica on another
# host never sees the counter). The database cache's incr is read-then-write: two revocations at the same
# instant may merge into one bump, and a worker that saw the first keeps its keys until DATAKEY_CACHE_TTL.
SHARED_CACHE_BACKENDS = {
    "django.core.cache.backends.redis.RedisCache": "redis",
    "django.core.cache.backends.memcached.PyMemcacheCache": "pymemcache",
    "django.core.cache.backends.memcached.PyLibMCCache": "pylibmc",
    "django.core.cache.backends.db.DatabaseCache": None,
}

LOOPBACK_NAMES = frozenset({"localhost", "testserver"})

MANAGEMENT_PROGRAMS = frozenset({"manage.py", "django-admin"})
HELP_OPTIONS = frozenset({"-h", "--help"})


def refuse_unsafe_production(
    *, debug: bool, secret_key: str | None, platform_kms_keys: dict, principal: str | None, cache: dict,
    tasks: dict | None = None,
) -> None:
    problems = [
        "DEBUG is on: production settings never run in debug mode; unset DEBUG "
        "(for development use DJANGO_SETTINGS_MODULE=konnect_admin.settings_dev)" if debug else None,
        secret_key_problem(secret_key),
        None if platform_kms_keys else (
            "PLATFORM_KMS_KEYS is required: set one platform KMS key ARN per Konnect region, "
            "us=arn:aws:kms:…,eu=arn:aws:kms:…"
        ),
        principal_problem(principal),
        cache_problem(cache["BACKEND"]),
        tasks_problem((tasks or {}).get("default", {}).get("BACKEND", "")),
    ]
    problems = [problem for problem in problems if problem]
    if problems:
        raise ImproperlyConfigured("Production settings refused: " + "; ".join(problems) + ".")


def only_prints_help(argv: list[str]) -> bool:
    """`manage.py <command> --help`, `manage.py help …`, `manage.py --version` or `manage.py` alone: argparse
    prints the text and exits before any command runs, so the process serves nothing and touches no key or
    database, and production's refusal would only hide the help. Options after `--` are a command's arguments."""
    if not argv or Path(argv[0]).name not in MANAGEMENT_PROGRAMS:
        return False
    arguments = argv[1:]
    if "--" in arguments:
        arguments = arguments[: arguments.index("--")]
    return not arguments or arguments[0] in ("help", "--version") or not HELP_OPTIONS.isdisjoint(arguments)


def tasks_problem(backend: str) -> str | None:
    if backend.endswith(".ImmediateBackend"):
        return ("TASKS_BACKEND=immediate runs key replacements and sweeps inside web requests: "
                "unset it (the database queue, `manage.py db_worker`) in production")
    return None


def secret_key_problem(secret_key: str | None) -> str | None:
    advice = "set it to 50+ random characters (python -c 'import secrets; print(secrets.token_urlsafe(50))')"
    if not secret_key:
        return f"SECRET_KEY is required: {advice}"
    if len(secret_key) < 50 or len(set(secret_key)) < 5 or secret_key.startswith("django-insecure-"):
        return f"SECRET_KEY is too weak: {advice}"
    return None


def principal_problem(principal: str | None) -> str | None:
    shape = "arn:aws:iam::<account>:role/<name>"
    if not principal:
        return f"PLATFORM_KMS_PRINCIPAL is required: set the platform's IAM role ARN ({shape}) that customers' key policies trust"
    match = IAM_PRINCIPAL.fullmatch(principal)
    if match is None:
        return f"PLATFORM_KMS_PRINCIPAL must be an IAM role or user ARN ({shape}), got {principal!r}"
    if match["account"] in EXAMPLE_AWS_ACCOUNTS:
        return (
            f"PLATFORM_KMS_PRINCIPAL names the example AWS account {match['account']}: set the platform's own "
            "IAM role ARN, the one the Link key page tells customers to trust"
        )
    return None


def cache_problem(backend: str) -> str | None:
    if backend not in SHARED_CACHE_BACKENDS:
        return (
            f"the cache {backend} is not shared by every worker, so a key revocation would not reach them: "
            "set CACHE_URL=redis://host:6379/0 (or CACHE_BACKEND to Django's Redis, Memcached or database cache)"
        )
    client = SHARED_CACHE_BACKENDS[backend]
    if client is None:
        return None
    try:
        importlib.import_module(client)
    except ImportError:
        return f"the cache {backend} needs the Python package {client!r}, which is not installed: pip install {client}"
    return None


def refuse_beyond_loopback(
    *, module: str, allowed_hosts: list[str], kms_endpoint_urls: list[str], platform_kms_keys: dict
) -> None:
    """A development or test settings module serves loopback hosts and talks to a local KMS only."""
    public_hosts = [host for host in allowed_hosts if not is_loopback(host)]
    if public_hosts:
        raise ImproperlyConfigured(
            f"{module} serves loopback only, but ALLOWED_HOSTS names {public_hosts[0]!r}: "
            "deploy with konnect_admin.settings (the default)."
        )
    remote = [url for url in kms_endpoint_urls if not is_loopback(urlsplit(url).hostname or "")]
    if remote or (platform_kms_keys and not kms_endpoint_urls):
        raise ImproperlyConfigured(
            f"{module} talks to a local KMS only (KMS_ENDPOINT_URL on loopback), never to AWS KMS: "
            "deploy with konnect_admin.settings (the default)."
        )


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def development_secret_key(path: Path) -> str:
    """A random key generated once into `path` (var/, never committed) and read back by every later process."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    draft.write_text(secrets.token_urlsafe(50))
    draft.chmod(0o600)
    try:
        os.link(draft, path)  # atomic: of two processes racing, one key wins and both read it
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text().strip()
