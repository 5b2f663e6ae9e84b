"""Settings every mode shares, read from the environment (see README and .env.example). Nothing here is
checked: production (konnect_admin.settings), development (konnect_admin.settings_dev) and the tests
(tests.settings) each import this module and add what their mode needs; only production refuses unsafe values.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.utils.csp import CSP

from konnect_admin.environment import (
    env_bool,
    env_cache,
    env_choice,
    env_int,
    env_json,
    env_list,
    env_mapping,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = False
SECRET_KEY = env_str("SECRET_KEY")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "axes",
    "django_tasks_db",
    "konnect_admin",
    "encryption_keys",
    "debugger",
    "vault",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "konnect_admin.middleware.HtmxMessagesMiddleware",
    "konnect_admin.middleware.CurrentOrganizationMiddleware",
    "konnect_admin.middleware.LoginRequiredMiddleware",
    # Last, as django-axes asks: turns a refused log-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "konnect_admin.urls"
WSGI_APPLICATION = "konnect_admin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
                "konnect_admin.context_processors.organization",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'konnect.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "konnect_admin.User"
# axes' backend first: a locked-out account or address is refused before any password is hashed.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "konnect_admin.authentication.EmailPasswordBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where `manage.py collectstatic` writes and whitenoise serves from (gunicorn needs no web server for them).
STATIC_ROOT = Path(env_str("STATIC_ROOT") or BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
# Production serves collectstatic's output; development and tests override this to serve from the finders.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# A cache shared by every worker carries the data-key generation counter (revocation reaches every process).
CACHES = {"default": env_cache()}

# --- Security --------------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie; keep Django's default
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# No inline scripts and no inline styles anywhere; htmx is served from 'self'.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}

# --- Encryption ------------------------------------------------------------------------------------------
# The key services customers' keys may live in (encryption_keys/providers): dotted paths of KeyProvider classes;
# a linked key's reference picks its provider.
KEY_PROVIDERS = [
    "encryption_keys.providers.aws.AwsKmsProvider",
    "encryption_keys.providers.transit.TransitProvider",
]
# AWS KMS: a local KMS server in dev/tests (e.g. http://127.0.0.1:4566); unset in production (the AWS SDK's
# default credential chain).
KMS_ENDPOINT_URL = env_str("KMS_ENDPOINT_URL")
# Per-AWS-region endpoint overrides, `us-west-2=http://…,us-east-2=http://…` (failover tests, local replicas).
KMS_ENDPOINT_URLS = env_mapping("KMS_ENDPOINT_URLS")
KMS_CONNECT_TIMEOUT = float(env_str("KMS_CONNECT_TIMEOUT", "2"))
KMS_READ_TIMEOUT = float(env_str("KMS_READ_TIMEOUT", "5"))
KMS_MAX_ATTEMPTS = env_int("KMS_MAX_ATTEMPTS", 2)
# One platform key per Konnect region: `us=arn:aws:kms:us-west-2:…:key/…,eu=arn:…`.
PLATFORM_KMS_KEYS = env_mapping("PLATFORM_KMS_KEYS")
# The AWS principal the platform uses, shown in the key-policy statement customers copy (required in production).
PLATFORM_KMS_PRINCIPAL = env_str("PLATFORM_KMS_PRINCIPAL")
# OpenBao / HashiCorp Vault Transit servers the platform may call (a JSON list; the only addresses a Transit key
# reference may name, and how the platform authenticates to each): see encryption_keys/providers/transit/servers.py
# and docs/key-providers.md. Empty: no Transit key can be linked.
TRANSIT_SERVERS = env_json("TRANSIT_SERVERS", [])
TRANSIT_CONNECT_TIMEOUT = float(env_str("TRANSIT_CONNECT_TIMEOUT", "2"))
TRANSIT_READ_TIMEOUT = float(env_str("TRANSIT_READ_TIMEOUT", "5"))
# Longest time an unwrapped data key stays usable in one process: the published revocation bound.
DATAKEY_CACHE_TTL = env_int("DATAKEY_CACHE_TTL", 60)
DATAKEY_FAILURE_TTL = env_int("DATAKEY_FAILURE_TTL", 5)
# A data-path KMS failure that says the key is disabled/denied/gone/pending deletion marks the key's status at
# once; the same key and status are observed at most once per this many seconds across all processes.
KEY_STATE_OBSERVE_SECONDS = env_int("KEY_STATE_OBSERVE_SECONDS", 10)
DATAKEY_LIFETIME_SECONDS = env_int("DATAKEY_LIFETIME_SECONDS", 3600)
DATAKEY_MAX_USES = env_int("DATAKEY_MAX_USES", 2**24)

# Key replacement (re-wrapping data keys): KMS calls in flight, data keys per committed transaction, and how
# long a worker's claim on a job lasts without a heartbeat (then another worker may take the job over).
KEY_REWRAP_CONCURRENCY = env_int("KEY_REWRAP_CONCURRENCY", 8)
KEY_REWRAP_COMMIT_EVERY = env_int("KEY_REWRAP_COMMIT_EVERY", 25)
KEY_REWRAP_LEASE_SECONDS = env_int("KEY_REWRAP_LEASE_SECONDS", 60)

# --- Background work: Django's Tasks framework ------------------------------------------------------------
# One backend, chosen by TASKS_BACKEND: `db` (default) queues tasks in this database (django-tasks-db; run
# `manage.py db_worker`), `immediate` runs each task in the process that enqueues it (tests only).
# See docs/background-work.md for why there is no Redis/RQ option yet.
TASK_BACKENDS = {
    "db": "django_tasks_db.DatabaseBackend",
    "immediate": "django.tasks.backends.immediate.ImmediateBackend",
}
TASKS = {"default": {"BACKEND": env_choice("TASKS_BACKEND", TASK_BACKENDS, "db")}}
# The schedule (`manage.py run_scheduler`, konnect_admin/scheduling.py): seconds between runs, and how long
# finished task results are kept.
KEY_HEALTH_SWEEP_SECONDS = env_int("KEY_HEALTH_SWEEP_SECONDS", 300)
# KMS calls in flight during a health sweep (a thread pool in the worker that runs it; one DescribeKey per key).
KEY_HEALTH_SWEEP_CONCURRENCY = env_int("KEY_HEALTH_SWEEP_CONCURRENCY", 16)
SESSION_EXPIRY_SECONDS = env_int("SESSION_EXPIRY_SECONDS", 60)
REWRAP_RECOVERY_SECONDS = env_int("REWRAP_RECOVERY_SECONDS", 60)
PURGE_SECONDS = env_int("PURGE_SECONDS", 86400)
# PostgreSQL only (debugger/partitions.py): how often the Debugger's day partitions are created ahead, and how
# many days ahead. Rows of a day nobody created land in a default partition and are moved out later.
DEBUGGER_PARTITION_SECONDS = env_int("DEBUGGER_PARTITION_SECONDS", 3600)
DEBUGGER_PARTITION_DAYS_AHEAD = env_int("DEBUGGER_PARTITION_DAYS_AHEAD", 7)
TASK_RESULT_RETENTION_DAYS = env_int("TASK_RESULT_RETENTION_DAYS", 7)

# Days the logs are kept (`manage.py purge_logs --yes` deletes older rows): the secret-resolution log
# (references and outcomes, never values) and the key-usage log (one row per KMS call).
SECRET_RESOLUTION_RETENTION_DAYS = env_int("SECRET_RESOLUTION_RETENTION_DAYS", 30)
KMS_CALL_LOG_RETENTION_DAYS = env_int("KMS_CALL_LOG_RETENTION_DAYS", 90)

# A password-reset link goes to one address at most once per this many seconds ("Forgot your password?").
PASSWORD_RESET_EMAIL_INTERVAL = env_int("PASSWORD_RESET_EMAIL_INTERVAL", 300)
# Envelope materials (POST /materials/encryption|decryption, system accounts only): calls per organization per window.
ENVELOPE_MATERIALS_RATE_LIMIT = env_int("ENVELOPE_MATERIALS_RATE_LIMIT", 600)
ENVELOPE_MATERIALS_RATE_WINDOW_SECONDS = env_int("ENVELOPE_MATERIALS_RATE_WINDOW_SECONDS", 60)
# Hours an invitation link stays valid (single use; a resend replaces it).
INVITATION_TTL_HOURS = env_int("INVITATION_TTL_HOURS", 72)

# --- Email (password-reset links) -------------------------------------------------------------------------
# One mailer through Django's MAILERS: SMTP from the environment in production; the console in development.
# A backend refuses options it does not know (MAILERS), so the SMTP options go to the SMTP backend only, and the
# file backend gets its directory from EMAIL_FILE_PATH. (Lower-case names: not settings; EMAIL_BACKEND is Django's
# deprecated pre-MAILERS setting.)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Konnect Admin <no-reply@localhost>")
_smtp_backend = "django.core.mail.backends.smtp.EmailBackend"
_file_backend = "django.core.mail.backends.filebased.EmailBackend"
_email_backend = env_str("EMAIL_BACKEND", _smtp_backend)
if _email_backend == _smtp_backend:
    _email_options = {
        "host": env_str("EMAIL_HOST", "localhost"),
        "port": env_int("EMAIL_PORT", 587),
        "username": env_str("EMAIL_HOST_USER", ""),
        "password": env_str("EMAIL_HOST_PASSWORD", ""),
        "use_tls": env_bool("EMAIL_USE_TLS", True),
        "timeout": env_int("EMAIL_TIMEOUT", 10),
    }
elif _email_backend == _file_backend:
    _email_options = {"file_path": env_str("EMAIL_FILE_PATH") or str(BASE_DIR / "var" / "mail")}
else:
    _email_options = {}
MAILERS = {"default": {"BACKEND": _email_backend, "OPTIONS": _email_options}}

# --- Log-in throttling (django-axes) and API token lifetimes -----------------------------------------
# After LOGIN_FAILURE_LIMIT failed log-ins of one account (from anywhere) or from one client IP (for any account),
# every log-in of that account / from that address is refused with a 429 page for LOGIN_LOCKOUT_MINUTES, counted
# from the last attempt; each lockout is written to the audit log. Failures are counted in the database (works on
# SQLite and PostgreSQL, shared by every worker, survives restarts) rather than in the cache, which is per process
# in development and tests. A successful log-in does not reset the counters: otherwise an attacker with an account
# of their own would clear their address's count between guesses.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "konnect_admin.authentication.login_username"
AXES_LOCKOUT_CALLABLE = "konnect_admin.authentication.lockout_response"
AXES_RESET_ON_SUCCESS = False
AXES_DISABLE_ACCESS_LOG = True  # successful log-ins are not kept (IP addresses are personal data)
AXES_ENABLE_ADMIN = False  # the operator console registers nothing we did not review; `manage.py axes_reset` unlocks
AXES_VERBOSE = False
# The client address: REMOTE_ADDR, or with LOGIN_PROXY_COUNT=N reverse proxies in front, the address the outermost
# one saw (N-th X-Forwarded-For entry from the right). Behind a proxy, leaving it 0 makes every client one address.
AXES_CLIENT_IP_CALLABLE = "konnect_admin.authentication.client_ip"
LOGIN_PROXY_COUNT = env_int("LOGIN_PROXY_COUNT", 0)  # development and tests: no proxy; production defaults to 1

# Days an API token stays valid: the default a new token gets, and the most its creator may choose.
ACCESS_TOKEN_DEFAULT_DAYS = env_int("ACCESS_TOKEN_DEFAULT_DAYS", 90)
ACCESS_TOKEN_MAX_DAYS = env_int("ACCESS_TOKEN_MAX_DAYS", 365)
DATA_PLANE_TOKEN_DEFAULT_DAYS = env_int("DATA_PLANE_TOKEN_DEFAULT_DAYS", 365)
DATA_PLANE_TOKEN_MAX_DAYS = env_int("DATA_PLANE_TOKEN_MAX_DAYS", 730)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"werkzeug": {"level": "WARNING"}},  # key providers quieten their SDKs themselves
}
