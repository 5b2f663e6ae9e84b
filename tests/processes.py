"""Worker, scheduler and web processes that a test starts against its own test database and the local KMS.

They run `manage.py` (or gunicorn) with tests.settings and the database task backend, so what they do is what a
deployed worker does; their output goes to a log file shown when a wait times out.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The URL of the test database this process uses (a file on SQLite: see tests/settings.py)."""
    from django.db import connection

    config = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{config['NAME']}"
    credentials = quote(config["USER"] or "", safe="")
    if config["PASSWORD"]:
        credentials += ":" + quote(config["PASSWORD"], safe="")
    return f"postgres://{credentials}@{config['HOST'] or '127.0.0.1'}:{config['PORT'] or 5432}/{config['NAME']}"


class Processes:
    """`start("db_worker", …)` runs a management command in a new process; `stop_all()` ends them."""

    def __init__(self, log_dir: Path, env: dict[str, str]):
        self.log_dir = log_dir
        self.env = env
        self.started: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *command: str, **env: str) -> subprocess.Popen:
        return self._spawn(name, ["manage.py", *command], env)

    def web(self, name: str, **env: str) -> str:
        """A gunicorn process of the real app (`konnect_admin.wsgi`, one worker) on a free loopback port; its URL
        once it listens."""
        self._spawn(name, ["-m", "gunicorn", "konnect_admin.wsgi", "--workers", "1", "--bind", "127.0.0.1:0",
                           "--log-level", "info"], env)
        log = self.log_dir / f"{name}.log"
        listening = re.compile(r"Listening at: (http://127\.0\.0\.1:\d+)")
        self.wait_until(lambda: listening.search(log.read_text(errors="replace")), what=f"{name} listens")
        return listening.search(log.read_text(errors="replace")).group(1)

    def _spawn(self, name: str, arguments: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.log_dir / f"{name}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and code, fixed arguments
            [sys.executable, *arguments], cwd=PROJECT_ROOT, env={**self.env, **env},
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        self.started[name] = process
        return process

    def worker(self, name: str, **env: str) -> subprocess.Popen:
        return self.start(name, "db_worker", "--no-reload", "--no-startup-delay", "--interval", "0.05",
                          "--worker-id", name, **env)

    def kill(self, name: str) -> None:
        """SIGKILL: no handler, no `finally`, nothing flushed, as when a machine is lost."""
        process = self.started[name]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
                         for path in sorted(self.log_dir.glob("*.log")))

    def wait_until(self, condition: Callable[[], object], *, what: str, timeout: float = 90) -> None:
        """Poll `condition` until it holds; fail with every process's log after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting until {what}\n{self.logs()}")
            time.sleep(0.05)

    def stop_all(self) -> None:
        for process in self.started.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.started.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def process_env(*, kms_endpoint_url: str, platform_keys: dict[str, str], **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KONNECT_")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings", TASKS_BACKEND="db", DATABASE_URL=database_url(),
        KMS_ENDPOINT_URL=kms_endpoint_url, PLATFORM_KMS_KEYS=",".join(f"{k}={v}" for k, v in platform_keys.items()),
        PYTHONUNBUFFERED="1", **extra,
    )
    return env
