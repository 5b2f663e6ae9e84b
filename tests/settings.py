"""Test settings: the project's settings with TESTING on (dev secret key, local KMS, fast hashing)."""

import os

os.environ.setdefault("KONNECT_TESTING", "true")

from konnect_admin.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; never in production

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]  # noqa: F405
