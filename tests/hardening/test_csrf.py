"""CSRF on every state-changing page view (htmx sends the token from <body hx-headers>)."""

import re

import pytest
from django.test import Client

from tests.hardening.test_isolation_matrix import RULES, url_for

pytestmark = pytest.mark.django_db
POSTS = sorted(name for name, rule in RULES.items() if rule.method == "POST")


def test_post_views_exist():
    assert len(POSTS) >= 10


@pytest.mark.parametrize("name", POSTS)
def test_post_without_csrf_token_is_refused(name, world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world["users"]["org_admin"])
    response = client.post(url_for(name, RULES[name], world["a"]), RULES[name].data or {"name": "x"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 403
    assert b"CSRF" in response.content


def test_pages_hand_htmx_the_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world["users"]["org_admin"])
    body = client.get("/control-planes/").content.decode()
    token = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', body)
    assert token, "the <body> carries no CSRF header for htmx"
    response = client.post("/account/tokens/new/", {"name": "via-htmx", "expires_in_days": "90"},
                           headers={"HX-Request": "true", "X-CSRFToken": token.group(1)})
    assert response.status_code == 201
