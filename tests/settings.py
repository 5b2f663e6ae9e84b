"""Test settings, the only way into test mode (no environment variable switches it on): the shared base with
the local KMS, an in-process cache, static files from the finders and fast password hashing."""

import os
import tempfile
from pathlib import Path

from konnect_admin.environment import env_str
from konnect_admin.settings_base import *  # noqa: F403
from konnect_admin.settings_checks import (
    PLACEHOLDER_KMS_PRINCIPAL,
    development_secret_key,
    refuse_beyond_loopback,
)

SECRET_KEY = development_secret_key(BASE_DIR / "var" / "development-secret-key")  # noqa: F405
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
PLATFORM_KMS_PRINCIPAL = PLATFORM_KMS_PRINCIPAL or PLACEHOLDER_KMS_PRINCIPAL  # noqa: F405

WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; never in production

INSTALLED_APPS = [*INSTALLED_APPS, "devtools", "tests.testapp"]  # noqa: F405

# SQLite: the test database is a file (not Django's default in-memory one), so worker and scheduler processes
# started by a test can open it; one per test process, so suites running side by side do not collide.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"konnect-test-{os.getpid()}.sqlite3")}  # noqa: F405

# Tasks run where they are enqueued, so a test sees their outcome at once; the worker tests
# (tests/konnect_admin/test_tasks_worker.py, …) start real `db_worker` processes on the database backend.
TASKS = {"default": {"BACKEND": TASK_BACKENDS[env_str("TASKS_BACKEND", "immediate")]}}  # noqa: F405

refuse_beyond_loopback(
    module=__name__,
    allowed_hosts=ALLOWED_HOSTS,
    kms_endpoint_urls=[url for url in (KMS_ENDPOINT_URL, *KMS_ENDPOINT_URLS.values()) if url],  # noqa: F405
    platform_kms_keys=PLATFORM_KMS_KEYS,  # noqa: F405
)
