"""Development settings for `make run` (the demo): DEBUG on, the local KMS, an in-process cache, static files
from the finders, and a secret key generated once into var/ rather than written in the source.

Loopback only: it refuses public host names and any KMS that is not on loopback, so it cannot be deployed by
accident; production is `konnect_admin.settings`, the default. Variables the environment leaves unset are read from
`.env` at the project root, which `make run` writes (the demo's database and local KMS, for later commands).
"""

from konnect_admin.environment import read_env_file

read_env_file()

from konnect_admin.settings_base import *  # noqa: E402, F403
from konnect_admin.settings_checks import (  # noqa: E402
    PLACEHOLDER_KMS_PRINCIPAL,
    development_secret_key,
    refuse_beyond_loopback,
)

DEBUG = True
INSTALLED_APPS = [*INSTALLED_APPS, "devtools"]  # noqa: F405 - the local KMS, the simulator and `manage.py demo`
SECRET_KEY = development_secret_key(BASE_DIR / "var" / "development-secret-key")  # noqa: F405
ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]"]  # noqa: F405
PLATFORM_KMS_PRINCIPAL = PLATFORM_KMS_PRINCIPAL or PLACEHOLDER_KMS_PRINCIPAL  # noqa: F405

MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}  # links in the log

WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405

refuse_beyond_loopback(
    module=__name__,
    allowed_hosts=ALLOWED_HOSTS,
    kms_endpoint_urls=[url for url in (KMS_ENDPOINT_URL, *KMS_ENDPOINT_URLS.values()) if url],  # noqa: F405
    platform_kms_keys=PLATFORM_KMS_KEYS,  # noqa: F405
)
