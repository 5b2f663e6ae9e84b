"""Browser tests: Playwright (Python) driving Debian's Chromium against pytest-django's live server.

Playwright's own browser download does not work on these machines; `make test` installs Debian's
`chromium`. Screenshots of every browser test land in test-artifacts/screenshots/ (CI artifacts).
"""

import re
from pathlib import Path

import pytest

from tests import factories

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

pytestmark = pytest.mark.browser


@pytest.fixture
def page(request, browser, live_server, transactional_db):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # JavaScript errors only: Chromium also logs every 4xx response (e.g. a 422 form) as a console error.
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Failed to load resource" not in m.text else None)
    page.js_errors = errors
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    try:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    finally:
        context.close()


@pytest.fixture
def browser_login(page):
    """`browser_login(user)`: log in through the real login form."""

    def _login(user):
        page.goto("/login/")
        page.get_by_label("Email").fill(user.email)
        page.get_by_label("Password").fill(factories.PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(re.compile(r".*/$"))
        return page

    return _login


@pytest.fixture
def page_without_js(browser, live_server, transactional_db):
    """`page_without_js(user)`: a page with JavaScript off, logged in through the real login form; its context is
    closed after the test."""
    contexts = []

    def _open(user):
        context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.goto("/login/")
        page.get_by_label("Email").fill(user.email)
        page.get_by_label("Password").fill(factories.PASSWORD)
        page.get_by_role("button", name="Log in").click()
        return page

    yield _open
    for context in contexts:
        context.close()
