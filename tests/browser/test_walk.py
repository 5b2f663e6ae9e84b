"""Every page, as every role, at desktop (1280 px) and phone (390 px) width (issue 18).

On each page: the expected status, no horizontal overflow (the document is no wider than the viewport), no console
error and no CSP violation, an h1 and a breadcrumb (except the pages in NO_BREADCRUMB, each with its reason), and
no serious or critical axe-core violation (axe from npm, run once per page at desktop width). A full-page
screenshot of each lands in test-artifacts/screenshots/walk/<role>/<width>/<page>.png (CI keeps test-artifacts/).

The page list comes from the URL conf: every URL name of the app (the names the isolation matrix enumerates, plus
the public ones) is either walked or in NOT_PAGES with its reason, and every registered ModelAdmin's change list is
walked on the operator console; a new page without a walk entry fails `test_every_page_is_walked`. Which role sees
which app page is the isolation matrix's RULES, so this walk and the permission checks cannot drift apart.

One test per role: one login, one browser context, all its pages at both widths.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.contrib import admin
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from konnect_admin.invitations import invitation_issue
from konnect_admin.models import User
from tests import factories
from tests.browser.conftest import SCREENSHOTS
from tests.hardening import conftest as hardening
from tests.hardening.test_isolation_matrix import PUBLIC, RULES, page_url_names

pytestmark = pytest.mark.browser

world = hardening.world  # the isolation matrix's fixture: two organizations, an object of every kind, every role
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (1280, 390)
OPERATOR_PASSWORD = "operator-long-password-1"  # noqa: S105

#: App pages that answer a GET although their isolation rule is a POST: a confirmation step, a form's own page.
GET_PAGES_OF_POST_RULES = {"member_remove", "vault_config_store_rename"}
#: URL names that are not pages, each with why. POST-only actions answer a GET with 405, which
#: `test_every_page_is_walked` checks, so an action that grows a page of its own is walked from then on.
NOT_PAGES = {
    "logout": "POST only: the Log out button",
    "encryption_key_replacements": "a redirect to the key page's #key-replacements section (the old address)",
    **{name: "POST only: a form's action" for name, rule in RULES.items()
       if rule.method == "POST" and name not in GET_PAGES_OF_POST_RULES},
}

#: Pages with no breadcrumb by design, with the reason.
NO_BREADCRUMB = {
    "debug_payload_panel": "a fragment: the trace page fetches it into a payload tab (no h1 either)",
    "login": "signed-out page, nothing above it",
    "password_reset": "signed-out page, reached from the login page",
    "password_reset_sent": "signed-out page, one step of the reset",
    "password_reset_confirm": "signed-out page, reached from the e-mailed link",
    "password_reset_complete": "signed-out page, the end of the reset",
    "invitation_accept": "reached from the e-mailed link, before the person belongs to the organization",
    "dashboard": "the home page: the top of every trail",
    "control_plane_list": "a section in the main navigation: a one-item trail would repeat the h1",
    "access_token_list": "a section in the main navigation (the user menu)",
    "member_list": "a section in the Organization settings menu",
    "audit_log": "a section in the Organization settings menu",
    "encryption_key_list": "a section in the Organization settings menu",
    "system_account_list": "a section in the Organization settings menu",
    "admin:login": "the operator console's signed-out page",
    "admin:index": "the operator console's home page",
}

#: Pages that are fragments of another page, fetched on their own by htmx: no h1 of their own.
FRAGMENTS = {"debug_payload_panel"}

#: The roles walked: the organization's roles of the isolation matrix (its cross-organization variants render
#: the same pages), a signed-out visitor and the platform operator.
ORG_ROLES = ["member", "viewer", "debug_session_creator", "vault_admin", "cp_admin", "org_admin_read_only",
             "org_admin"]


def app_pages(role: str) -> list[str]:
    return sorted(name for name, rule in RULES.items()
                  if role in rule.allowed and (rule.method == "GET" or name in GET_PAGES_OF_POST_RULES)
                  and name not in NOT_PAGES)


def admin_model_urls() -> list[tuple[str, str]]:
    """(page name, URL) of the operator console: the home page, each app's index, each model's change list and
    the change page of its first object."""
    pages = [("admin:index", reverse("admin:index"))]
    for app_label in sorted({model._meta.app_label for model in admin.site._registry}):
        pages.append((f"admin:app_list:{app_label}", reverse("admin:app_list", args=[app_label])))
    for model in sorted(admin.site._registry, key=lambda m: m._meta.label_lower):
        info = (model._meta.app_label, model._meta.model_name)
        pages.append((f"admin:{info[0]}_{info[1]}_changelist", reverse("admin:{}_{}_changelist".format(*info))))
        obj = model._default_manager.order_by("pk").first()
        if obj is not None:
            pages.append((f"admin:{info[0]}_{info[1]}_change",
                          reverse("admin:{}_{}_change".format(*info), args=[obj.pk])))
    return pages


def test_every_page_is_walked(world):
    """Every URL name is walked by some role or is in NOT_PAGES; each NOT_PAGES action really answers GET with 405."""
    walked = {name for role in ORG_ROLES for name in app_pages(role)} | set(PUBLIC)
    missing = [name for name in page_url_names() + sorted(PUBLIC) if name not in walked and name not in NOT_PAGES]
    assert not missing, f"pages no role walks (add a walk entry or a NOT_PAGES reason): {missing}"
    client = Client()
    client.force_login(world["users"]["org_admin"])
    for name, reason in NOT_PAGES.items():
        if name in RULES:
            url = reverse(name, args=[world["a"][arg] for arg in RULES[name].args])
            status = client.get(url).status_code
            expected = 302 if reason.startswith("a redirect") else 405
            assert status == expected, f"{name} answers GET with {status}: walk it, or say why it is not a page"
    walked_admin = {name for name, _ in admin_model_urls()}
    for model in admin.site._registry:
        assert f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist" in walked_admin


class Walk:
    """One role's browser context; `visit` runs every check on a page at both widths and collects failures."""

    def __init__(self, browser, live_server, role: str):
        self.role = role
        self.context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        self.page.on("console", self._console)
        # A CSP violation is also logged by Chromium, but the event names the directive even when it is not.
        self.context.add_init_script(
            "document.addEventListener('securitypolicyviolation', e => console.error("
            "'CSP violation: ' + e.violatedDirective + ' ' + (e.blockedURI || 'inline')));")
        self.failures: list[str] = []
        self.visited = 0
        self.axe_source = AXE.read_text()

    def _console(self, message):
        if message.type != "error":
            return
        # Chromium logs a 4xx/5xx response as a console error; the page's own expected status is checked apart.
        if "Failed to load resource" in message.text and message.location.get("url") == self.page.url:
            return
        self.errors.append(f"{message.text} ({message.location.get('url')})")

    def visit(self, name: str, url: str, *, status: int = 200, breadcrumb_selector: str = 'nav[aria-label="Breadcrumb"]'):
        page = self.page
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            self.errors.clear()
            response = page.goto(url)
            page.wait_for_load_state("load")
            where = f"{self.role} {width}px {name} ({url})"
            self.visited += 1
            if response is None or response.status != status:
                self.failures.append(f"{where}: status {response and response.status}, expected {status}")
            overflow = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            if overflow[0] > overflow[1]:
                wide = page.evaluate(WIDEST_ELEMENTS)
                self.failures.append(f"{where}: {overflow[0]} px wide in a {overflow[1]} px viewport; widest: {wide}")
            if page.locator("h1").count() == 0 and name not in FRAGMENTS:
                self.failures.append(f"{where}: no h1")
            if name not in NO_BREADCRUMB and page.locator(breadcrumb_selector).count() == 0:
                self.failures.append(f"{where}: no breadcrumb")
            if width == WIDTHS[0]:
                for violation in self.axe():
                    self.failures.append(f"{where}: axe {violation}")
            path = SCREENSHOTS / "walk" / self.role / str(width) / f"{re.sub(r'[^\w.-]+', '_', name)}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(path), full_page=True)
            if self.errors:
                self.failures.append(f"{where}: console errors {self.errors}")

    def axe(self) -> list[str]:
        """Serious and critical axe-core violations, one line each with the first offending elements."""
        # Evaluated through the DevTools protocol, which the page's strict CSP does not govern.
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            self.page.evaluate(self.axe_source)
        results = self.page.evaluate(
            "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map("
            "v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))")
        return [f"{v['impact']} {v['id']} ({v['help']}): {json.dumps(v['nodes'])}"
                for v in results if v["impact"] in ("serious", "critical")]

    def login(self, email: str, password: str, *, path: str = "/login/", button: str = "Log in"):
        self.page.goto(path)
        self.page.get_by_label(re.compile("Email")).fill(email)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name=button).click()
        self.page.wait_for_load_state("load")
        assert "/login/" not in self.page.url, f"{self.role} could not log in"

    def close(self):
        self.context.close()


WIDEST_ELEMENTS = """(() => {
  // The elements whose box or content (a long word overflows its box) passes the viewport's right edge, outermost
  // first, leaving out what a scrolling or clipping ancestor contains.
  const vw = window.innerWidth;
  const clipped = e => { for (let a = e.parentElement; a; a = a.parentElement) {
    if (getComputedStyle(a).overflowX !== 'visible') return true; } return false; };
  const right = e => e.getBoundingClientRect().left + (getComputedStyle(e).overflowX === 'visible'
    ? Math.max(e.getBoundingClientRect().width, e.scrollWidth) : e.getBoundingClientRect().width);
  return [...document.querySelectorAll('body *')]
    .filter(e => e.checkVisibility() && right(e) > vw + 1 && !clipped(e))
    .sort((a, b) => right(b) - right(a))
    .slice(0, 4).map(e => e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).replace(/ +/g, '.') : '')
      + ' ' + Math.round(right(e)) + 'px');
})()"""


@pytest.fixture
def walk(browser, live_server, transactional_db, request):
    walks = []

    def _walk(role):
        walks.append(Walk(browser, live_server, role))
        return walks[-1]

    yield _walk
    for each in walks:
        each.close()


def report(walk: Walk, expected_at_least: int):
    assert walk.visited >= expected_at_least, f"{walk.role} walked {walk.visited} page views"
    assert not walk.failures, f"{len(walk.failures)} failures as {walk.role}:\n" + "\n".join(walk.failures)


@pytest.mark.parametrize("role", ORG_ROLES)
def test_walk_as_org_role(role, world, walk):
    w = walk(role)
    w.login(world["users"][role].email, factories.PASSWORD)
    names = app_pages(role)
    for name in names:
        rule = RULES[name]
        w.visit(name, reverse(name, args=[world["a"][arg] for arg in rule.args]))
    # A page the role may not see: the error card, also a page of the walk.
    if "control_plane_detail" not in names:
        w.visit("denied", reverse("control_plane_detail", args=[world["a"]["cp"]]), status=404,
                breadcrumb_selector="h1")
    w.visit("not_found", "/no-such-page/", status=404, breadcrumb_selector="h1")
    report(w, 2 * len(names))


def test_walk_signed_out(world, walk):
    """The public pages: login, the password reset (through a real signed link) and an invitation."""
    w = walk("anonymous")
    user = world["users"]["viewer"]
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    mail.outbox.clear()
    invitation_issue(organization=world["a"]["org"], actor=world["a"]["admin"], email="new.person@alpha.test",
                     teams=[], base_url="http://testserver")
    invitation_url = re.search(r"http://testserver(/invitations/[^/\s]+/)", mail.outbox[-1].body).group(1)
    pages = {
        "login": reverse("login"),
        "password_reset": reverse("password_reset"),
        "password_reset_sent": reverse("password_reset_sent"),
        "password_reset_complete": reverse("password_reset_complete"),
        "invitation_accept": invitation_url,
    }
    assert set(pages) | {"password_reset_confirm", "logout"} == PUBLIC
    for name, url in pages.items():
        w.visit(name, url)
    # The signed link redirects to the set-password form (the token moves into the session).
    w.visit("password_reset_confirm",
            reverse("password_reset_confirm", args=[uid, default_token_generator.make_token(user)]))
    report(w, 2 * (len(pages) + 1))


def test_walk_operator_console(world, walk):
    """The platform operator's console: its home page, each app's index, each model's change list and change page."""
    User.objects.create_superuser(email="ops@platform.test", password=OPERATOR_PASSWORD)
    w = walk("operator")
    w.visit("admin:login", reverse("admin:login"), breadcrumb_selector=".breadcrumbs")
    w.login("ops@platform.test", OPERATOR_PASSWORD, path=reverse("admin:login"), button="Log in")
    pages = admin_model_urls()
    for name, url in pages:
        w.visit(name, url, breadcrumb_selector=".breadcrumbs")
    report(w, 2 * len(pages))
