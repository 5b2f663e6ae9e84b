"""Reading settings from the environment: `KONNECT_<NAME>` wins over plain `<NAME>`; a `.env` file at the project
root fills in what the environment leaves unset (production and development settings read it, the tests never)."""

import json
import os
from pathlib import Path

import dotenv
from django.core.exceptions import ImproperlyConfigured

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def env_file_path() -> Path:
    """`.env` at the project root, or the file KONNECT_ENV_FILE names (the tests point it elsewhere)."""
    return Path(os.environ.get("KONNECT_ENV_FILE") or PROJECT_ROOT / ".env")


# The names read_env_file took from the file (not from the environment): `make run` tells its own last values apart.
FROM_ENV_FILE: set[str] = set()


def read_env_file() -> None:
    """Set each variable of the `.env` file that the environment does not set already: the environment wins.

    Values are taken literally (no `${…}` expansion: a secret may contain `$`). A missing file is no error."""
    path = env_file_path()
    if not path.is_file():
        return
    for name, value in dotenv.dotenv_values(path, interpolate=False).items():
        if value is not None and name not in os.environ:
            os.environ[name] = value
            FROM_ENV_FILE.add(name)


def env_file_value(name: str) -> str | None:
    """One variable of the `.env` file, without reading the file into the environment (manage.py's settings
    module: the environment's DJANGO_SETTINGS_MODULE wins, then the file's)."""
    path = env_file_path()
    if not path.is_file():
        return None
    return dotenv.dotenv_values(path, interpolate=False).get(name) or None


def env_str(name: str, default: str | None = None) -> str | None:
    for key in (f"KONNECT_{name}", name):
        value = os.environ.get(key)
        if value not in (None, ""):
            return value
    return default


def env_bool(name: str, default: bool = False) -> bool:
    value = env_str(name)
    if value is None:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = env_str(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_mapping(name: str) -> dict[str, str]:
    """`us=arn:…,eu=arn:…` → {"us": "arn:…", "eu": "arn:…"}."""
    mapping = {}
    for item in env_list(name):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ImproperlyConfigured(f"{name} entries must look like key=value, got {item!r}")
        mapping[key.strip()] = value.strip()
    return mapping


def env_json(name: str, default):
    """A JSON value (`TRANSIT_SERVERS='[{"address": …}]'`); the error never echoes the value (it may hold secrets)."""
    value = env_str(name)
    if value is None:
        return default
    try:
        return json.loads(value)
    except ValueError as invalid:
        raise ImproperlyConfigured(f"{name} must be JSON: {invalid.msg} at position {invalid.pos}") from None


def env_choice(name: str, choices: dict[str, str], default: str) -> str:
    """The value `choices` maps the variable's name to (`TASKS_BACKEND=db` → the backend's dotted path)."""
    chosen = (env_str(name, default) or default).strip().lower()
    if chosen not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(sorted(choices))}, got {chosen!r}")
    return choices[chosen]


LOCAL_MEMORY_CACHE = "django.core.cache.backends.locmem.LocMemCache"
REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"


def env_cache() -> dict[str, str]:
    """The default cache: `CACHE_URL=redis://…` (Redis, the documented shared cache), or `CACHE_BACKEND` and
    `CACHE_LOCATION` for any other Django backend; unset → local memory (development and tests only).
    `CACHE_KEY_PREFIX` keeps deployments (or test runs) that share one server apart."""
    url, backend, location = env_str("CACHE_URL"), env_str("CACHE_BACKEND"), env_str("CACHE_LOCATION")
    prefix = {"KEY_PREFIX": key_prefix} if (key_prefix := env_str("CACHE_KEY_PREFIX")) else {}
    if url is None:
        return {"BACKEND": backend or LOCAL_MEMORY_CACHE, "LOCATION": location or "konnect-admin", **prefix}
    if backend or location:
        raise ImproperlyConfigured("Set either CACHE_URL or CACHE_BACKEND/CACHE_LOCATION, not both.")
    scheme = url.partition("://")[0]  # never echo the URL itself: it may carry a password
    if scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(
            f"CACHE_URL must be a redis://, rediss:// or unix:// URL, got a {scheme}:// one; "
            "for Memcached or the database cache set CACHE_BACKEND and CACHE_LOCATION instead."
        )
    return {"BACKEND": REDIS_CACHE, "LOCATION": url, **prefix}
