"""A production install from nothing, as the README's "Production" section tells an operator to run it.

The commands are the README's, in its order: the environment (production settings `konnect_admin.settings`, DEBUG
off, a fresh PostgreSQL database made for this test and dropped after it, Redis as `CACHE_URL`, a local KMS standing
for AWS, e-mail to files), `manage.py migrate`, `manage.py collectstatic --noinput`, the gunicorn command (two
workers here, the README's timeouts), `manage.py db_worker` and `manage.py run_scheduler`, then
`manage.py create_organization`. Everything after that first organization is done over HTTP in Chromium, as people
do it: no `manage.py shell`, no `/platform-admin/`. The browser sends `X-Forwarded-Proto: https` on every request,
as the TLS proxy the README asks for does (production redirects plain HTTP to HTTPS and sets secure cookies).

The path is issue 14's "Done when": the invitation e-mail (read from the file backend's directory) is accepted in
the browser; the first Org Admin links a key on the local KMS through the Link key page (the key is made, on the
customer's side, with the policy statements that page shows, and the KMS evaluates them for the platform principal
the install is configured with); invites a second person, who accepts in a second browser context and is made Org
Admin on the Members page; then takes that role away again, and is refused when removing their own, the last one.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import pytest

from devtools import local_kms as kms_admin
from devtools.local_kms import LocalKmsServer
from tests.browser.conftest import SCREENSHOTS

pytestmark = [pytest.mark.install, pytest.mark.browser]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
POSTGRES = "postgres://postgres@127.0.0.1:5432"
# The platform's role in a made-up account: production refuses the AWS documentation accounts the other tests use.
PRINCIPAL = "arn:aws:iam::314159265358:role/konnect-admin-cmek"
# The README's gunicorn command, with two workers (the test shares two cores with the rest of the suite).
GUNICORN_OPTIONS = ["--workers", "2", "--timeout", "60", "--graceful-timeout", "30"]
FIRST, SECOND = "first@acme.example", "second@acme.example"
PASSWORD = {FIRST: "first-admin-picked-this-41", SECOND: "second-admin-picked-this-42"}
WAIT = 90  # seconds: generous deadlines for a loaded two-core machine


@pytest.fixture
def fresh_database():
    """A PostgreSQL database of this test alone (even when the suite runs on SQLite), dropped afterwards."""
    import psycopg

    name = f"konnect_install_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True, connect_timeout=10) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield f"{POSTGRES}/{name}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True, connect_timeout=10) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def platform_kms():
    """A local KMS whose callers stand for PRINCIPAL (as the platform's role does on AWS), with a platform key."""
    server = LocalKmsServer(caller_principal=PRINCIPAL).start()
    platform_key = kms_admin.create_key(region="us-west-2", description="Konnect platform key (us)", multi_region=True)
    yield server, platform_key
    server.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Install:
    """The processes of one install; each one's output in a log file shown when something fails."""

    def __init__(self, env: dict[str, str], log_dir: Path):
        self.env, self.log_dir = env, log_dir
        self.running: dict[str, subprocess.Popen] = {}

    def run(self, *command: str, timeout: float = 120) -> str:
        """`python manage.py <command>`: it must succeed; its output."""
        result = subprocess.run(  # noqa: S603 - our own interpreter and code
            [sys.executable, "manage.py", *command], cwd=PROJECT_ROOT, env=self.env, capture_output=True, text=True,
            timeout=timeout, check=False,
        )
        assert result.returncode == 0, f"manage.py {' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def start(self, name: str, program: str, *arguments: str) -> None:
        with (self.log_dir / f"{name}.log").open("wb") as log:
            self.running[name] = subprocess.Popen(  # noqa: S603 - our own interpreter and code
                [program, *arguments], cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def alive(self) -> list[str]:
        return [name for name, process in self.running.items() if process.poll() is None]

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
                         for path in sorted(self.log_dir.glob("*.log")))

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for(condition, *, what: str, install: Install, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}\n{install.logs()}")
        time.sleep(0.1)
    return result


def answers(url: str) -> bool:
    try:
        with urlopen(Request(url, headers={"X-Forwarded-Proto": "https"}), timeout=5):  # noqa: S310 - loopback
            return True
    except OSError as error:
        return getattr(error, "code", None) is not None  # an HTTP status: it listens


def invitation_link(mail_dir: Path, to: str) -> str | None:
    """The link of the newest invitation e-mail to `to` in the file backend's directory."""
    for path in sorted(mail_dir.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True):
        for raw in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
            if not raw.strip():
                continue
            message = email.message_from_bytes(raw, policy=email.policy.default)
            if message["To"] == to:
                body = message.get_body(preferencelist=("plain",)).get_content()
                return re.search(r"(https?://\S+/invitations/\S+/)", body).group(1)
    return None


def test_a_production_install_from_nothing_to_two_org_admins_and_the_last_one_kept(
    tmp_path, fresh_database, platform_kms, redis_cache, browser,
):
    from playwright.sync_api import expect

    kms, platform_key = platform_kms
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    mail_dir, logs = tmp_path / "mail", tmp_path / "logs"
    logs.mkdir()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("KONNECT_") and key not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DEBUG")}
    env.update(
        DJANGO_SETTINGS_MODULE="konnect_admin.settings",
        KONNECT_ENV_FILE=str(tmp_path / "no.env"),  # a developer's .env in the checkout is not this install's
        SECRET_KEY=f"install-test-{uuid.uuid4().hex}{uuid.uuid4().hex}",
        ALLOWED_HOSTS="127.0.0.1",
        # Chromium reaches the app over plain HTTP; its Origin is this, although the proxy header makes it HTTPS.
        CSRF_TRUSTED_ORIGINS=base_url,
        DATABASE_URL=fresh_database,
        **redis_cache.env,
        KMS_ENDPOINT_URL=kms.endpoint_url,
        PLATFORM_KMS_KEYS=f"us={platform_key}",
        PLATFORM_KMS_PRINCIPAL=PRINCIPAL,
        TASKS_BACKEND="db",
        STATIC_ROOT=str(tmp_path / "static"),
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(mail_dir),
        PYTHONUNBUFFERED="1",
    )
    install = Install(env, logs)
    bin_dir = Path(sys.executable).parent
    try:
        install.run("migrate", "--noinput")
        install.run("collectstatic", "--noinput")
        assert any((tmp_path / "static").rglob("*.css"))
        install.start("web", str(bin_dir / "gunicorn"), "konnect_admin.wsgi", "--bind", f"127.0.0.1:{port}",
                      *GUNICORN_OPTIONS)
        install.start("worker", sys.executable, "manage.py", "db_worker", "--queue-name", "*")
        install.start("scheduler", sys.executable, "manage.py", "run_scheduler")
        wait_for(lambda: answers(f"{base_url}/login/"), what="gunicorn answers", install=install)

        created = install.run("create_organization", "--name", "Acme", "--admin-email", FIRST, "--base-url", base_url)
        printed = re.search(r"(http://\S+/invitations/\S+/)", created).group(1)
        first_link = wait_for(lambda: invitation_link(mail_dir, FIRST), what="the invitation e-mail", install=install)
        assert first_link == printed and first_link.startswith(base_url)

        run_in_browser(browser, expect=expect, install=install, base_url=base_url, mail_dir=mail_dir,
                       first_link=first_link)
        assert sorted(install.alive()) == ["scheduler", "web", "worker"], install.logs()
    finally:
        install.stop()


def new_page(browser, base_url: str):
    """A browser context behind the TLS proxy: every request says it came in over HTTPS."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900},
                                  extra_http_headers={"X-Forwarded-Proto": "https"})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    return page


def accept_invitation(page, link: str, *, first_name: str, email_address: str, expect) -> None:
    page.goto(link)
    expect(page.get_by_role("heading", name="Join Acme")).to_be_visible()
    page.get_by_label("First name").fill(first_name)
    page.get_by_label(re.compile(r"^Password(?! again)")).fill(PASSWORD[email_address])
    page.get_by_label("Password again").fill(PASSWORD[email_address])
    page.get_by_role("button", name="Create account and join").click()
    expect(page.locator("main .messages")).to_contain_text("Welcome to Acme.")


def run_in_browser(browser, *, expect, install: Install, base_url: str, mail_dir: Path, first_link: str):
    first = new_page(browser, base_url)
    # Static files come from gunicorn itself (whitenoise, collectstatic's manifest names), with the page's CSS.
    stylesheet = first.request.get(f"{base_url}/login/").text()
    css = re.search(r'href="(/static/[^"]+\.css)"', stylesheet).group(1)
    response = first.request.get(f"{base_url}{css}")
    assert response.status == 200 and "text/css" in response.headers["content-type"], css

    accept_invitation(first, first_link, first_name="Fiona", email_address=FIRST, expect=expect)

    # Link a key: the customer creates it in "their AWS account" with the statements the Link key page shows.
    first.goto("/organization/encryption-keys/link/")
    statements = json.loads(first.locator("#key-policy-json").inner_text())
    assert PRINCIPAL in json.dumps(statements)
    policy = {"Version": "2012-10-17", "Statement": statements}
    arn = kms_admin.create_key(region="us-west-2", description="Acme CMEK", multi_region=True, policy=policy)
    kms_admin.replicate_key(arn, to_region="us-east-2", policy=policy)
    first.get_by_role("textbox", name="Name", exact=True).fill("Acme US")
    first.get_by_label("Key reference").fill(arn)
    first.get_by_label("Konnect region").select_option("us")
    first.get_by_role("button", name="Connect").click()
    expect(first.get_by_text("Key linked.")).to_be_visible()
    expect(first.locator('.encryption-keys-check[data-verdict="fail"]')).to_have_count(0)
    first.get_by_role("link", name="Open the key page").click()
    expect(first.get_by_role("heading", name="Acme US")).to_be_visible()
    expect(first.locator("#key-usage")).to_contain_text("GenerateDataKey")

    # Invite a second person (no team), who accepts in a browser of their own.
    first.goto("/organization/members/")
    first.get_by_label("Email addresses").fill(SECOND)
    first.get_by_role("button", name="Send invitations").click()
    expect(first.locator("main .messages")).to_contain_text(f"Invitation sent to {SECOND}.")
    second_link = wait_for(lambda: invitation_link(mail_dir, SECOND), what="the second e-mail", install=install)
    # Invited from a page the proxy marked HTTPS, the link is https://: the proxy's address, which the browser here
    # stands behind (it talks to gunicorn directly, with the proxy's header).
    assert second_link.startswith(base_url.replace("http://", "https://") + "/invitations/"), second_link
    second = new_page(browser, base_url)
    accept_invitation(second, urlsplit(second_link).path, first_name="Sam", email_address=SECOND, expect=expect)
    assert second.goto("/organization/members/").status == 403  # a member without a role: not theirs to see

    # The first makes them Organization Admin on the Members page; they can manage members now.
    first.goto("/organization/members/")
    add = first.locator("form", has=first.get_by_role("button", name="Add to team"))
    add.get_by_label("Person").select_option(label=SECOND)
    add.get_by_label("Team").select_option(label="Organization Admin")
    add.get_by_role("button", name="Add to team").click()
    expect(first.locator("main .messages")).to_contain_text(f"{SECOND} added to Organization Admin.")
    assert second.goto("/organization/members/").status == 200
    expect(second.get_by_role("button", name="Send invitations")).to_be_visible()

    # The first takes it away again, then cannot leave the organization without an Organization Admin.
    first.get_by_role("button", name=f"Remove {SECOND} from Organization Admin").click()
    expect(first.locator("main .messages")).to_contain_text(f"{SECOND} removed from Organization Admin.")
    assert second.goto("/organization/members/").status == 403
    first.get_by_role("button", name=f"Remove {FIRST} from Organization Admin").click()
    expect(first.locator("main .messages")).to_contain_text("must keep at least one active Organization Admin")
    expect(first.get_by_role("button", name=f"Remove {FIRST} from Organization Admin")).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    first.screenshot(path=str(SCREENSHOTS / "production_install_last_admin.png"), full_page=True)
    first.goto("/organization/encryption-keys/")  # still an admin: the admin-only page opens
    expect(first.get_by_role("link", name="Acme US")).to_be_visible()
    assert first.js_errors == [] and second.js_errors == []
