"""Production settings, the default module (manage.py, wsgi): the shared base, HTTPS only, and checked.

A missing or unsafe setting stops the process with one line saying what to set (only `manage.py <command> --help`
is let through: it prints and exits before anything runs). Nothing in the environment turns this module into a
development or test mode: `DEBUG=true` is refused, `TESTING` is not read. Development is
`konnect_admin.settings_dev` (`make run`), tests are `tests.settings`. Variables the environment leaves unset are
read from `.env` at the project root.
"""

import sys

from konnect_admin.environment import env_bool, env_int, read_env_file

read_env_file()

from konnect_admin.settings_base import *  # noqa: E402, F403
from konnect_admin.settings_checks import only_prints_help, refuse_unsafe_production  # noqa: E402

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Production sits behind the TLS proxy whose X-Forwarded-Proto it trusts, so by default the client address is the
# last X-Forwarded-For entry: at 0 every client would share the proxy's address, and ten bad log-ins would lock
# everybody out. LOGIN_PROXY_COUNT=0 when clients connect directly, N for N proxies.
LOGIN_PROXY_COUNT = env_int("LOGIN_PROXY_COUNT", 1)

if not only_prints_help(sys.argv):
    refuse_unsafe_production(
        debug=env_bool("DEBUG", False),
        secret_key=SECRET_KEY,  # noqa: F405
        platform_kms_keys=PLATFORM_KMS_KEYS,  # noqa: F405
        principal=PLATFORM_KMS_PRINCIPAL,  # noqa: F405
        cache=CACHES["default"],  # noqa: F405
        tasks=TASKS,  # noqa: F405
    )
