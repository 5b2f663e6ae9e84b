"""The frame every page shares: messages as alerts in the content column, one breadcrumb component, Copy buttons on
new tokens, and no inline style or script anywhere (the CSP allows none)."""

import pathlib
import re

import pytest
from django.conf import settings
from django.urls import reverse

from konnect_admin.models import Team
from tests import factories

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
TEMPLATES = pathlib.Path(settings.BASE_DIR) / "templates"


def main_column(html: str) -> str:
    return html.split('<main id="main">', 1)[1].split("</main>", 1)[0]


def test_messages_are_alerts_inside_the_content_column(login, org, org_admin):
    person = factories.make_user(org)
    team = Team.objects.get(organization=org, name="Control Plane Admin")
    client = login(org_admin)
    response = client.post(reverse("team_membership"), {"user": person.pk, "team": team.pk, "member": "on"})
    html = client.get(response["Location"]).content.decode()
    alert = f'<div class="alert alert-success" role="status">{person.email} added to Control Plane Admin.</div>'
    assert alert in main_column(html) and alert not in html.split("<main", 1)[0]
    client.post(reverse("organization_switch"), {"organization": "not-a-uuid"})
    html = client.get(reverse("dashboard")).content.decode()
    assert '<div class="alert alert-error" role="alert">You are not a member of that organization.</div>' in main_column(html)


def test_assigning_a_role_in_place_says_what_was_assigned(login, org, org_admin, control_plane):
    person = factories.make_user(org)
    fragment = login(org_admin).post(reverse("role_assign"), {"user": person.pk, "role": "vault_admin",
                                                             "control_plane": control_plane.pk}, headers=HTMX)
    assert fragment.status_code == 200
    assert (f'<div class="alert alert-success" role="status">Vault Admin on payments assigned to {person.email}.</div>'
            in fragment.content.decode())
    full = login(org_admin).post(reverse("role_assign"), {"user": person.pk, "role": "cp_viewer"}, follow=True)
    assert f"Control Plane Viewer on all control planes assigned to {person.email}." in main_column(
        full.content.decode())


def test_the_oob_region_carries_a_queued_message(rf, org_admin):
    from django.contrib.messages import success
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.contrib.sessions.backends.cache import SessionStore
    from django.http import HttpResponse
    from django_htmx.middleware import HtmxDetails

    from konnect_admin.middleware import HtmxMessagesMiddleware

    def view(request):
        success(request, "Saved in place.")
        return HttpResponse("<section id=x>fragment</section>", content_type="text/html; charset=utf-8")

    def run(**headers):
        request = rf.get("/", headers=headers)
        request.session = SessionStore()
        request._messages = FallbackStorage(request)
        request.htmx = HtmxDetails(request)
        return HtmxMessagesMiddleware(view)(request).content.decode()

    swapped = run(HX_Request="true")
    assert swapped.startswith("<section id=x>fragment</section>")
    assert '<div id="messages" class="messages" hx-swap-oob="true">' in swapped
    assert '<div class="alert alert-success" role="status">Saved in place.</div>' in swapped
    assert "Saved in place." not in run()  # a full page renders its messages itself, in base.html


def test_new_tokens_have_a_copy_button(login, org, org_admin, control_plane):
    client = login(org_admin)
    pat = client.post(reverse("access_token_create"), {"name": "ci", "expires_in_days": "30"}, headers=HTMX)
    dpt = client.post(reverse("data_plane_token_create", args=[control_plane.pk]), {"name": "gw", "expires_in_days": "30"},
                      headers=HTMX)
    from konnect_admin import system_accounts

    account = system_accounts.system_account_create(organization=org, actor=org_admin, name="ci-bot")
    spat = client.post(reverse("system_account_token_create", args=[account.pk]),
                       {"token-name": "prod", "token-expires_in_days": "90"}, headers=HTMX)
    for response in (pat, dpt, spat):
        html = response.content.decode()
        assert response.status_code == 201, html
        token = re.search(r'<pre id="new-token">([^<]+)</pre>', html)[1]
        assert token.startswith(("kpat_", "kdpt_", "spat_"))
        assert '<button type="button" class="copy-button" data-copy-target="new-token" hidden>Copy</button>' in html
    page = client.get(reverse("access_token_list")).content.decode()
    assert "js/copy.js" in page and "data-copy-target" not in page  # the button comes with a token only


def test_the_data_plane_token_name_hint_is_about_gateways(login, org_admin, control_plane):
    html = login(org_admin).get(reverse("control_plane_detail", args=[control_plane.pk])).content.decode()
    section = html.split('id="data-plane-tokens"', 1)[1]
    assert "terraform-ci" not in section and "Which gateways use it" in section
    assert "e.g. terraform-ci" in login(org_admin).get(reverse("access_token_list")).content.decode()


def test_the_org_switcher_label_is_for_screen_readers_and_the_form_one_line(login, org, other_org):
    from konnect_admin import services

    user = factories.make_user(org)
    services.member_add(organization=other_org, user=user, actor=None)
    html = login(user).get(reverse("dashboard")).content.decode()
    assert '<label for="org-switch" class="visually-hidden">Organization</label>' in html
    css = (pathlib.Path(settings.BASE_DIR) / "static/css/app.css").read_text()
    assert re.search(r"\.org-switch \{[^}]*flex-wrap:nowrap", css)


# --- templates, checked as files --------------------------------------------------------------------------------


def template_files():
    return sorted(path for path in TEMPLATES.rglob("*.html"))


def test_no_inline_styles_or_scripts_in_any_template():
    offenders = []
    for path in template_files():
        text = path.read_text()
        if re.search(r"\sstyle=|<style\b", text) or re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) or re.search(
                r"\son[a-z]+=\"", text):
            offenders.append(str(path.relative_to(TEMPLATES)))
    assert offenders == []


def test_every_breadcrumb_uses_the_one_component():
    offenders = [str(path.relative_to(TEMPLATES)) for path in template_files()
                 if path.name != "breadcrumbs.html" and ('class="crumbs"' in path.read_text() or "›" in path.read_text())]
    assert offenders == []
    users = [path for path in template_files() if "{% breadcrumbs %}" in path.read_text()]
    assert len(users) >= 20


def test_breadcrumbs_render_links_then_the_current_page(login, org_admin, control_plane):
    from vault import services as vault

    store = vault.config_store_create(actor=org_admin, control_plane=control_plane, name="payments-secrets")
    html = login(org_admin).get(reverse("vault_secret_list", args=[control_plane.pk, store.pk])).content.decode()
    nav = re.search(r'<nav class="crumbs" aria-label="Breadcrumb">.*?</nav>', html, re.S)[0]
    assert nav == (
        '<nav class="crumbs" aria-label="Breadcrumb"><ol>'
        f'<li><a href="{reverse("control_plane_list")}">Control planes</a></li>'
        f'<li><a href="{reverse("control_plane_detail", args=[control_plane.pk])}">payments</a></li>'
        f'<li><a href="{reverse("vault_config_store_list", args=[control_plane.pk])}">Vault</a></li>'
        '<li><span aria-current="page">payments-secrets</span></li></ol></nav>')
