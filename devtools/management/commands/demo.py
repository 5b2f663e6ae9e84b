import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dotenv
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from devtools.demo import DEMO_PASSWORD, demo_build
from konnect_admin import environment

DEMO_PLATFORM_KEYS = "us=us-west-2+us-east-2,eu=eu-central-1+eu-west-1"
# The demo's block in .env: what a later `manage.py <command>` needs to reach this demo's database and KMS.
ENV_BLOCK_START = "# >>> make run: the demo's settings, database and local KMS (rewritten by each run; edit outside)"
ENV_BLOCK_END = "# <<< make run"
STOP_GRACE_SECONDS = 15.0  # after Ctrl-C, for the worker and the scheduler together


class Command(BaseCommand):
    help = (
        "Create a fresh demo database (two organizations, a user per role) and serve the app on 127.0.0.1:8000, "
        "with a task worker and the scheduler beside it; Ctrl-C stops all three."
    )

    def add_arguments(self, parser):
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--no-serve", action="store_true", help="Build the demo data and exit.")
        parser.add_argument(
            "--reset-database", action="store_true", help="Allow wiping a non-SQLite database (it is flushed)."
        )

    def handle(self, *args, **options):
        self.start_local_kms()
        self.reset_database(allow_flush=options["reset_database"])
        call_command("migrate", verbosity=0, interactive=False)
        demo = demo_build(log=lambda message: self.stdout.write(message))
        env_file = write_env_block(environment.env_file_path(), self.demo_environment())
        self.stdout.write(f"Wrote {env_file}: `.venv/bin/python manage.py <command>` uses this demo while it runs")
        self.stdout.write(self.style.SUCCESS(f"\nDemo logins (password for all: {DEMO_PASSWORD}):"))
        for email, label in demo.logins:
            self.stdout.write(f"  {email:<24} {label}")
        if options["no_serve"]:
            return
        background = self.start_background()
        try:
            self.stdout.write(f"\nServing on http://{options['addrport']}/")
            call_command("runserver", options["addrport"], use_reloader=False)
        finally:
            self.stop_background(background)

    def demo_environment(self) -> dict[str, str]:
        """The settings module, database and KMS of this demo, as variables a process started beside it reads."""
        return {"DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE),
                "DATABASE_URL": _database_url(), "KMS_ENDPOINT_URL": settings.KMS_ENDPOINT_URL,
                "PLATFORM_KMS_KEYS": ",".join(f"{geo}={arn}" for geo, arn in settings.PLATFORM_KMS_KEYS.items())}

    def start_background(self) -> list[subprocess.Popen]:
        """The task worker and the scheduler, as production runs them, on this database and this KMS."""
        env = {**os.environ, **self.demo_environment()}
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        processes = [
            subprocess.Popen([*manage, "db_worker", "--no-reload", "--interval", "0.5"], env=env),  # noqa: S603
            subprocess.Popen([*manage, "run_scheduler"], env=env),  # noqa: S603
        ]
        self.stdout.write(f"Task worker (pid {processes[0].pid}) and scheduler (pid {processes[1].pid}) started")
        return processes

    def stop_background(self, processes: list[subprocess.Popen], *, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop the worker and the scheduler within `grace` seconds in all, then kill what is left: a child held up
        (behind a database lock, on a loaded machine) must not keep the terminal after Ctrl-C."""
        self.stdout.write("Stopping the task worker and the scheduler")
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in processes:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"pid {process.pid} had not stopped after {grace:g} s: killed")
                process.kill()
                process.wait()
        self.stdout.write("Stopped")

    def start_local_kms(self) -> None:
        """Without KMS_ENDPOINT_URL, run the local KMS server in this process and create the platform keys. The
        KMS of the last run, read back from .env's block, is gone with that run: it counts as unset."""
        last_run = env_block_values(environment.env_file_path())
        from_last_run = ("KMS_ENDPOINT_URL" in environment.FROM_ENV_FILE
                         and settings.KMS_ENDPOINT_URL == last_run.get("KMS_ENDPOINT_URL"))
        if settings.KMS_ENDPOINT_URL and not from_last_run:
            if not settings.PLATFORM_KMS_KEYS:
                raise CommandError("KMS_ENDPOINT_URL is set: set PLATFORM_KMS_KEYS too (one key ARN per region).")
            self.stdout.write(f"Using the KMS at {settings.KMS_ENDPOINT_URL}")
            return
        from devtools.local_kms import LocalKmsServer, create_platform_keys
        from encryption_keys import providers

        self.kms_server = LocalKmsServer(caller_principal=settings.PLATFORM_KMS_PRINCIPAL).start()
        settings.KMS_ENDPOINT_URL = self.kms_server.endpoint_url
        settings.PLATFORM_KMS_KEYS = create_platform_keys(DEMO_PLATFORM_KEYS)
        providers.reset()
        self.stdout.write(f"Local KMS server on {self.kms_server.endpoint_url} (in this process)")

    def reset_database(self, *, allow_flush: bool) -> None:
        if connection.vendor == "sqlite":
            path = Path(settings.DATABASES["default"]["NAME"])
            connection.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        if not allow_flush:
            raise CommandError(
                "The demo builds a fresh database. DATABASE_URL (from the environment or .env) points at a non-SQLite "
                "database: pass --reset-database to flush it, or unset DATABASE_URL to use the embedded SQLite file."
            )
        call_command("migrate", verbosity=0, interactive=False)
        call_command("flush", interactive=False, verbosity=0)


def _database_url() -> str:
    config = settings.DATABASES["default"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{config['NAME']}"
    return os.environ.get("KONNECT_DATABASE_URL") or os.environ["DATABASE_URL"]


def env_block_values(path: Path) -> dict[str, str]:
    """The variables inside the demo's block of the .env file at `path` (none if there is no such block)."""
    if not path.is_file():
        return {}
    lines = path.read_text().splitlines()
    if ENV_BLOCK_START not in lines or ENV_BLOCK_END not in lines[lines.index(ENV_BLOCK_START):]:
        return {}
    start = lines.index(ENV_BLOCK_START)
    block = lines[start + 1 : lines.index(ENV_BLOCK_END, start)]
    return {name: value for name, value in dotenv.dotenv_values(stream=io.StringIO("\n".join(block)),
                                                                interpolate=False).items() if value is not None}


def write_env_block(path: Path, values: dict[str, str]) -> Path:
    """Replace the demo's block of the .env file at `path` with `values`; every other line is kept as written.

    Written privately (0600) and atomically: a DATABASE_URL may carry a password, and a half-written file would
    leave later commands with half a configuration."""
    lines = path.read_text().splitlines() if path.is_file() else []
    if ENV_BLOCK_START in lines and ENV_BLOCK_END in lines[lines.index(ENV_BLOCK_START):]:
        start = lines.index(ENV_BLOCK_START)
        del lines[start : lines.index(ENV_BLOCK_END, start) + 1]
    block = [ENV_BLOCK_START, *(f"{name}={_env_quoted(value)}" for name, value in values.items()), ENV_BLOCK_END]
    draft = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    draft.touch(mode=0o600)
    draft.chmod(0o600)
    draft.write_text("\n".join([*lines, *block]) + "\n")
    draft.replace(path)
    return path


def _env_quoted(value: str) -> str:
    """Single quotes: taken literally by every .env reader; double quotes with escapes for a value holding one."""
    if "'" not in value:
        return f"'{value}'"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
