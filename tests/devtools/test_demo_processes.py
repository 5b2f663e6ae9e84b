"""`make run` (manage.py demo) serves the app with a task worker and the scheduler beside it, on SQLite with
nothing else to run, and one Ctrl-C stops all three; it writes .env so that a command run beside it, with nothing
in its environment, reaches the demo's database and local KMS."""

import os
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import urllib.request

import dotenv
import pytest

from tests.processes import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, *, what, log, timeout=180):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.2)


def answers(url) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return response.status == 200
    except OSError:
        return False


def alive(pid) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# What the last `make run` left in .env: its local KMS (gone with it), its keys, another database.
STALE_BLOCK = """LOG_LEVEL=INFO
# >>> make run: the demo's settings, database and local KMS (rewritten by each run; edit outside)
DJANGO_SETTINGS_MODULE='konnect_admin.settings_dev'
DATABASE_URL='sqlite:////nonexistent/stale.sqlite3'
KMS_ENDPOINT_URL='http://127.0.0.1:9'
PLATFORM_KMS_KEYS='us=arn:aws:kms:us-west-2:111122223333:key/mrk-00000000000000000000000000000000'
# <<< make run
"""


def test_demo_runs_web_worker_and_scheduler_and_ctrl_c_stops_all(tmp_path):
    database, log, port = tmp_path / "demo.sqlite3", tmp_path / "demo.log", free_port()
    env_file = tmp_path / ".env"
    env_file.write_text(STALE_BLOCK)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("KONNECT_") and key not in ("KMS_ENDPOINT_URL", "PLATFORM_KMS_KEYS")}
    env.update(DJANGO_SETTINGS_MODULE="konnect_admin.settings_dev", DATABASE_URL=f"sqlite:///{database}",
               PYTHONUNBUFFERED="1", KONNECT_ENV_FILE=str(env_file))
    with log.open("wb") as out:
        demo = subprocess.Popen(  # noqa: S603 - our interpreter and manage.py
            [sys.executable, "manage.py", "demo", "--addrport", f"127.0.0.1:{port}"], cwd=PROJECT_ROOT, env=env,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,  # its own group: the terminal's Ctrl-C
            # A terminal's foreground job takes Ctrl-C; this test may run in a background job (`.ci/run &`), whose
            # SIGINT is ignored and would be inherited, and then the demo's server never hears it.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509 - only a signal reset
        )
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/login/"), what="the web server answers",
                   log=log)
        pids = [int(pid) for pid in re.search(r"worker \(pid (\d+)\) and scheduler \(pid (\d+)\)",
                                              log.read_text()).groups()]

        def swept():  # the scheduler enqueued the health sweep and the worker ran it, checking the demo's keys
            with sqlite3.connect(database, timeout=20) as db:
                return db.execute("SELECT count(*) FROM django_tasks_database_dbtaskresult WHERE status = 'SUCCESSFUL'"
                                  " AND task_path = 'encryption_keys.tasks.sweep_key_health'").fetchone()[0] > 0

        wait_until(swept, what="a scheduled key check ran in the worker", log=log)
        assert_a_command_beside_the_demo_reaches_it(env_file, database, log)

        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's whole foreground group
        try:
            demo.wait(timeout=60)  # the demo gives its children STOP_GRACE_SECONDS (15 s) in all, then kills them
        except subprocess.TimeoutExpired:
            pytest.fail(f"the demo did not exit within 60 s of Ctrl-C; its log ends:\n{log.read_text()[-3000:]}")
        assert "Stopped" in log.read_text()
        wait_until(lambda: not any(alive(pid) for pid in pids), what="the worker and scheduler exited", log=log,
                   timeout=60)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()


def assert_a_command_beside_the_demo_reaches_it(env_file, database, log) -> None:
    """`.venv/bin/python manage.py check_keys` in another terminal: only PATH, the rest from the demo's .env."""
    written = dotenv.dotenv_values(env_file)
    assert written["LOG_LEVEL"] == "INFO"  # the operator's own lines are kept
    assert written["DJANGO_SETTINGS_MODULE"] == "konnect_admin.settings_dev"
    assert written["DATABASE_URL"] == f"sqlite:///{database}"  # the environment's database won over the stale one
    kms_url = written["KMS_ENDPOINT_URL"]
    assert kms_url.startswith("http://127.0.0.1:") and kms_url != "http://127.0.0.1:9"  # its own KMS, not the dead one
    assert f"Local KMS server on {kms_url}" in log.read_text()
    assert "mrk-00000000000000000000000000000000" not in written["PLATFORM_KMS_KEYS"]
    assert env_file.read_text().count("# >>> make run") == 1
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600

    def beside_the_demo(*arguments: str) -> str:
        result = subprocess.run(  # noqa: S603 - our interpreter and manage.py
            [sys.executable, "manage.py", *arguments], cwd=PROJECT_ROOT,
            env={"PATH": os.environ["PATH"], "KONNECT_ENV_FILE": str(env_file)},
            capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    checked = beside_the_demo("check_keys", "--fail-on-unhealthy")
    assert re.search(r"Checked (\d+) keys?: \1 usable, 0 unhealthy\.", checked), checked
    # The README's destructive commands, dry: they read the demo's data (and its KMS) and change nothing.
    with sqlite3.connect(database, timeout=20) as db:
        session = db.execute("SELECT s.id FROM debugger_debugsession s JOIN konnect_admin_controlplane c"
                             " ON c.id = s.control_plane_id JOIN konnect_admin_organization o"
                             " ON o.id = c.organization_id WHERE o.name = 'Acme' LIMIT 1").fetchone()[0]
    for dry_run in (["purge_logs"], ["purge_debugger_data"], ["reseal"], ["rotate_data_keys", "--org", "Acme"],
                    ["shred", "--org", "Acme", "--session", str(session)]):
        assert "Dry run: nothing changed." in beside_the_demo(*dry_run), dry_run


def test_ctrl_c_kills_a_child_that_does_not_stop_within_the_grace(capsys):
    """A worker held up (here: one that ignores SIGTERM) is killed after the grace, not waited for."""
    from devtools.management.commands.demo import Command

    stubborn = subprocess.Popen([sys.executable, "-c",  # noqa: S603 - our interpreter
                                 "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                                 "print('ready', flush=True); time.sleep(120)"], stdout=subprocess.PIPE)
    assert stubborn.stdout.readline() == b"ready\n"  # its handler is in place before the signal
    started = time.monotonic()
    Command().stop_background([stubborn], grace=0.5)
    assert stubborn.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 30  # the grace, not the child's two minutes
    assert f"pid {stubborn.pid} had not stopped after 0.5 s: killed" in capsys.readouterr().err
