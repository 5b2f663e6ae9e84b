import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "KONNECT_SECRET_KEY": "a-production-like-secret-key-that-is-long-and-random-0123456789-abcdefghij",
    "KONNECT_ALLOWED_HOSTS": "admin.example.com",
    "KONNECT_PLATFORM_KMS_KEYS": "us=arn:aws:kms:us-west-2:111122223333:key/mrk-0123456789abcdef0123456789abcdef",
}


def run_manage(*args, env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KONNECT_", "DJANGO_"))}
    clean.pop("DEBUG", None)
    clean.pop("SECRET_KEY", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_check_deploy_is_clean_under_production_settings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "KONNECT_SECRET_KEY"}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_production_refuses_to_start_without_platform_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "KONNECT_PLATFORM_KMS_KEYS"}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "PLATFORM_KMS_KEYS is required" in result.stderr
