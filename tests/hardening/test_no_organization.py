"""A signed-in user without an active organization — none yet, or only a suspended one — never gets a 500.

Every page URL the resolver knows is requested with GET and POST, with the ids of real objects (those of an
organization the user is not in, or of the user's own suspended one). A page that needs an organization answers
the "No organization yet" explanation (403); the rest (login, logout, password reset) answer as usual.
"""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from konnect_admin.models import Organization
from tests import factories
from tests.hardening.test_isolation_matrix import RULES, page_url_names

pytestmark = pytest.mark.django_db

SAMPLES = {"uuid": uuid.UUID(int=1), "int": 1, "string": "x", "slug": "x", "path": "x"}


def page_patterns() -> dict[str, URLPattern]:
    def walk(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns)
            elif pattern.name:
                yield pattern.name, pattern

    return dict(walk(get_resolver().url_patterns))


def page_urls(objects: dict) -> dict[str, str]:
    """Every page URL: with the world's objects where the isolation matrix names them, else sample values."""
    patterns = page_patterns()
    urls = {}
    for name in page_url_names():
        if name in RULES:
            urls[name] = reverse(name, args=[objects[arg] for arg in RULES[name].args])
            continue
        converters = patterns[name].pattern.converters
        kwargs = {key: SAMPLES[type(converter).__name__.removesuffix("Converter").lower()]
                  for key, converter in converters.items()}
        urls[name] = reverse(name, kwargs=kwargs)
    return urls


def needs_organization(url: str) -> bool:
    view = get_resolver().resolve(url).func
    return getattr(view, "login_required", True) and getattr(view, "organization_required", True)


def outcomes(user, urls: dict[str, str]) -> list[str]:
    client = Client(raise_request_exception=False)  # a 500 is a finding, listed with the others
    failures = []
    for name, url in urls.items():
        for method in ("get", "post"):
            client.force_login(user)  # again: POST /logout/ signs out
            response = getattr(client, method)(url)
            explained = response.status_code == 403 and b"No organization yet" in response.content
            if response.status_code >= 500 or explained != needs_organization(url):
                failures.append(f"{method.upper()} {name} {url} → {response.status_code}")
    return failures


def test_user_without_membership_gets_the_explanation_on_every_page(world):
    failures = outcomes(factories.make_user(), page_urls(world["a"]))
    assert not failures, "\n".join(failures)


def test_member_of_a_suspended_organization_gets_the_explanation_on_every_page(world):
    organization = world["a"]["org"]
    Organization.objects.filter(pk=organization.pk).update(state=Organization.State.INACTIVE)
    failures = outcomes(world["a"]["admin"], page_urls(world["a"]))
    assert not failures, "\n".join(failures)
    client = Client()
    client.force_login(world["a"]["admin"])
    response = client.get(reverse("control_plane_list"))
    assert b"Your organization is suspended" in response.content


def test_htmx_request_without_organization_is_sent_to_the_explanation(org):
    client = Client()
    client.force_login(factories.make_user())
    response = client.get(reverse("control_plane_list"), headers={"HX-Request": "true"})
    assert response["HX-Redirect"] == reverse("dashboard")


def test_operator_console_and_apis_keep_their_own_rules(org):
    client = Client()
    client.force_login(factories.make_user())
    assert client.get("/api/us/v2/openapi.json").status_code == 200
    assert b"No organization yet" not in client.get("/platform-admin/").content


def test_user_without_organization_can_sign_out(db):
    client = Client()
    client.force_login(factories.make_user())
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session
