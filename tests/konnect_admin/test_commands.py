"""Every management command the README names answers `--help` in a bare shell (no settings at all, as a new
operator first types it), and a command that lacks configuration or credentials ends with one line saying what to
set — never a traceback. Production's refusal of unsafe settings stays for everything that is not a help text."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from encryption_keys.providers.aws import kms
from konnect_admin.settings_checks import only_prints_help
from tests.konnect_admin.test_settings import PRODUCTION_ENV

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def readme_commands() -> list[str]:
    """The commands the README lists ("Management commands: `a`, `b`…") or shows as `manage.py <command>`."""
    listed = re.search(r"Management commands: (.+?)(?:\n\n|\(destructive)", README, re.S)
    names = re.findall(r"`([a-z_]+)`", listed.group(1)) if listed else []
    names += re.findall(r"manage\.py ([a-z_]+)", README)
    return sorted(set(names))


COMMANDS = readme_commands()
# A shell with nothing set: no settings module, no secret, no database, no .env of a past `make run`.
BARE = {"PATH": os.environ["PATH"], "KONNECT_ENV_FILE": os.devnull}
# No AWS credentials anywhere boto3 looks (environment, files, the instance metadata service).
NO_AWS_CREDENTIALS = {"AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
                      "AWS_CONFIG_FILE": "/nonexistent/config"}


def manage(*arguments: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *arguments], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_readme_lists_the_commands():
    assert {"check_keys", "rewrap_data_keys", "shred", "purge_logs", "run_scheduler", "db_worker", "kms_server",
            "demo", "migrate"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_readme_command_prints_its_help_with_nothing_set(command):
    result = manage(command, "--help", env=BARE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: manage.py {command} ")
    assert result.stderr == ""


@pytest.mark.parametrize("arguments", [[], ["help"], ["help", "check_keys"]], ids=["bare", "help", "help-command"])
def test_manage_py_help_lists_the_apps_commands_with_nothing_set(arguments):
    result = manage(*arguments, env=BARE)
    assert result.returncode == 0 and result.stderr == ""
    assert "check_keys" in result.stdout and "settings are not properly configured" not in result.stdout


@pytest.mark.parametrize("arguments", [["check_keys"], ["check", "--", "--help"], ["migrate", "--plan"]])
def test_anything_but_a_help_text_is_still_refused_in_one_line(arguments):
    result = manage(*arguments, env=BARE)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("Production settings refused: SECRET_KEY is required")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["manage.py", "check_keys", "--help"], True),
        (["/srv/app/manage.py", "shred", "--org", "Acme", "-h"], True),
        (["manage.py"], True),
        (["manage.py", "help"], True),
        (["manage.py", "--version"], True),
        (["/venv/bin/django-admin", "migrate", "--help"], True),
        (["manage.py", "check_keys"], False),
        (["manage.py", "shell", "--", "--help"], False),  # after `--`, an argument of the command
        (["manage.py", "runserver", "--helpful"], False),
        (["/venv/bin/gunicorn", "konnect_admin.wsgi", "--help"], False),
        (["-c", "--help"], False),
        ([], False),
    ],
)
def test_only_a_management_help_request_counts_as_printing_help(argv, expected):
    assert only_prints_help(argv) is expected


# --- KMS without credentials ------------------------------------------------------------------------------

def test_check_keys_without_credentials_or_endpoint_says_what_to_set():
    result = manage("check_keys", env={**BARE, **PRODUCTION_ENV, **NO_AWS_CREDENTIALS})
    assert result.returncode == 1
    assert result.stderr == (
        "CommandError: No AWS credentials for KMS: set AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
        "or AWS_PROFILE, or an instance role) or KMS_ENDPOINT_URL for a local KMS.\n"
    )
    assert result.stdout == ""


def test_a_kms_call_without_credentials_is_a_configuration_error_not_a_key_error(db, settings, monkeypatch, kms_calls):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in NO_AWS_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    settings.KMS_ENDPOINT_URL, settings.KMS_ENDPOINT_URLS = None, {}
    kms.reset_clients()
    assert kms.configuration_problem() == kms.NO_CREDENTIALS_MESSAGE
    arn = "arn:aws:kms:us-west-2:210987654321:key/0123456789abcdef0123456789abcdef"
    with pytest.raises(kms.KmsNotConfigured, match="set AWS credentials .* or KMS_ENDPOINT_URL"):
        kms.describe_key(key_arn=arn)
    assert [call.outcome for call in kms_calls(key_arn=arn)] == ["not_configured"]
    kms.reset_clients()


def test_a_local_endpoint_needs_no_credentials(settings):
    settings.KMS_ENDPOINT_URL = "http://127.0.0.1:4566"
    assert kms.configuration_problem() is None
