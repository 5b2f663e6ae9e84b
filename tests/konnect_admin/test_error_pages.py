"""The error pages under DEBUG off, as production shows them: the app's layout (with its navigation for a logged-in
user), never the exception's text or a traceback; the JSON API's paths answer problem+json whatever the error."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from tests import factories
from tests.konnect_admin.urls_raising import SECRET_MESSAGE

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.konnect_admin.urls_raising")]

HEADINGS = {
    400: "This request could not be understood",
    403: "You do not have access to this page",
    404: "Page not found",
    500: "Something went wrong on our side",
}
NAVIGATION = 'aria-label="Main"'


@pytest.fixture(autouse=True)
def production_debug(settings):
    settings.DEBUG = False


@pytest.fixture
def anonymous(client):
    client.raise_request_exception = False
    return client


@pytest.fixture
def member(org):
    return factories.make_user(org, email="ada@example.test")


@pytest.fixture
def logged_in(client, member):
    client.raise_request_exception = False
    client.force_login(member)
    return client


def assert_styled_page(response, status: int) -> str:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert f"<h1 id=\"error-title\">{HEADINGS[status]}</h1>" in page
    assert "/static/css/app.css" in page and 'class="topbar"' in page  # the app's stylesheet and header
    assert SECRET_MESSAGE not in page
    assert "Traceback" not in page and "raising_view" not in page
    return page


@pytest.mark.parametrize("status", [400, 403, 404])
def test_a_logged_in_user_gets_the_styled_page_with_the_navigation(logged_in, member, status):
    page = assert_styled_page(logged_in.get(f"/test-errors/{status}/"), status)
    assert NAVIGATION in page
    assert member.email in page and "Acme" in page  # the session column: who and which organization


@pytest.mark.parametrize("status", [400, 403, 404])
def test_an_anonymous_visitor_gets_the_styled_page_without_navigation(anonymous, status):
    page = assert_styled_page(anonymous.get(f"/test-errors/{status}/"), status)
    assert NAVIGATION not in page and "Log out" not in page


@pytest.mark.parametrize("who", ["anonymous", "logged_in"])
def test_a_server_error_is_the_self_contained_styled_page(request, who):
    client = request.getfixturevalue(who)
    page = assert_styled_page(client.get("/test-errors/500/"), 500)
    # Rendered without the request (the failure may be the database): no navigation, nobody's data.
    assert NAVIGATION not in page and "ada@example.test" not in page


def test_a_server_error_page_that_cannot_render_is_still_no_traceback(anonymous, settings):
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}}  # no manifest: {% static %} fails
    response = anonymous.get("/test-errors/500/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Server error" in page and SECRET_MESSAGE not in page and "Traceback" not in page


def test_an_unknown_address_is_the_styled_404(logged_in, anonymous):
    assert NAVIGATION in assert_styled_page(logged_in.get("/no-such-page/"), 404)
    assert NAVIGATION not in assert_styled_page(Client().get("/no-such-page/"), 404)


def test_another_organizations_object_is_the_styled_404(logged_in, other_control_plane):
    page = assert_styled_page(logged_in.get(reverse("control_plane_detail", args=[other_control_plane.pk])), 404)
    assert other_control_plane.name not in page


def test_a_role_that_may_not_is_the_styled_403(client, org):
    client.force_login(factories.make_role_user(org, "cp_viewer"))
    assert NAVIGATION in assert_styled_page(client.get(reverse("control_plane_create")), 403)


def test_a_refused_host_is_the_styled_400(anonymous):
    assert_styled_page(anonymous.get("/", HTTP_HOST="attacker.example"), 400)


def test_a_form_without_its_csrf_token_is_a_styled_403_with_the_navigation(member):
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    response = client.post(reverse("control_plane_create"), {"name": "no-token", "region": "us"})
    assert response.status_code == 403
    page = response.content.decode()
    assert "This form could not be accepted" in page and NAVIGATION in page and "/static/css/app.css" in page
    assert "CSRF verification failed" not in page  # Django's own page, unstyled, is not what users see


def test_the_login_lockout_is_the_styled_429(anonymous, org, settings):
    settings.AXES_FAILURE_LIMIT = 3
    factories.make_user(org, email="ada@example.test")
    for attempt in range(3):
        response = anonymous.post(reverse("login"), {"username": "ada@example.test", "password": f"guess-{attempt}"})
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    page = response.content.decode()
    assert '<h1 id="error-title">Too many failed log-in attempts</h1>' in page
    assert "/static/css/app.css" in page and NAVIGATION not in page
    assert "guess-2" not in page and "Traceback" not in page


# --- the JSON API keeps problem+json ----------------------------------------------------------------------

def problem(response, status: int) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert body["status"] == status and body["detail"] and body["instance"].startswith("kong:trace:")
    assert SECRET_MESSAGE not in response.content.decode() and "Traceback" not in response.content.decode()
    return body


@pytest.mark.parametrize("status", [400, 403, 404, 500])
@pytest.mark.parametrize("who", ["anonymous", "logged_in"])
def test_api_paths_answer_problem_json(request, who, status):
    client = request.getfixturevalue(who)
    problem(client.get(f"/api/us/v1/test-errors/{status}/"), status)


@pytest.mark.parametrize("path", ["/api/us/v1/no-such-endpoint", "/api/us/v0/cmeks/not-a-uuid/nothing",
                                  "/api/xx/v2/control-planes", "/api/"])
def test_unknown_api_addresses_are_problem_json_404(anonymous, path):
    problem(anonymous.get(path, HTTP_AUTHORIZATION="Bearer kpat_nothing"), 404)


def test_a_refused_host_on_an_api_path_is_problem_json_400(anonymous):
    problem(anonymous.get("/api/us/v0/cmeks", HTTP_HOST="attacker.example"), 400)
