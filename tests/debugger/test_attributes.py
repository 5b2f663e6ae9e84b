"""The span-attribute denylist: case-insensitive and pattern-based (issue 12, point 7).

The attack: a data plane sent `Http.Request.Header.Authorization` (not the lowercase name the exact-match
denylist knew); it was stored in clear, shown on the trace page and in the operator's admin.
"""

import importlib

import pytest
from django.apps import apps as django_apps
from django.urls import reverse

from debugger.attributes import NAME_ATTRIBUTES, REDACTED, entity_names, name_attributes, scrub
from debugger.models import Span
from konnect_admin.models import User
from tests import leaks
from tests.debugger.conftest import post_traces, trace_json

CREDENTIAL = leaks.plant("attr-credential-0c9d4e")

DROPPED = [
    "Http.Request.Header.Authorization", "HTTP.REQUEST.HEADER.AUTHORIZATION", "http.request.header.authorization",
    "http.response.header.set-cookie", "Http.Response.Header.Set-Cookie", "authorization", "Authorization",
    "Proxy-Authorization", "proxy_authorization", "cookie", "Set-Cookie", "x-api-key", "X-API-Key", "apikey",
    "api_key", "ApiKey", "x-auth-token", "accessToken", "refresh_token", "kong.jwt", "client_secret",
    "clientSecret", "db.password", "DB_PASSWORD", "user.passwd", "aws.signature", "session_id", "private_key",
    "Url.Full", "HTTP.URL", "Http.Target", "url.query", "Client.Address", "http.user_agent",
]
KEPT = {"kong.plugin.name": "key-auth", "http.route": "/orders/{id}", "http.status_code": 200,
        "gen_ai.usage.input_tokens": 12, "url.path": "/orders/42", "http.method": "POST",
        "kong.service.name": "orders"}


@pytest.mark.parametrize("name", DROPPED)
def test_credential_and_payload_attributes_are_dropped_whatever_their_case(name):
    kept, dropped = scrub({name: CREDENTIAL, **KEPT})
    assert (kept, dropped) == (KEPT, 1)


def test_a_value_that_is_itself_a_credential_is_dropped():
    kept, dropped = scrub({"kong.note": f"Bearer {CREDENTIAL}", "kong.other": f"basic {CREDENTIAL}", **KEPT})
    assert (kept, dropped) == (KEPT, 2)


@pytest.mark.parametrize("param", ["token", "key", "api_key", "Password", "signature", "X-Amz-Signature", "sig",
                                   "access_token", "code"])
def test_credentials_in_query_strings_are_redacted(param):
    url = f"https://upstream.test/orders?page=2&{param}={CREDENTIAL}"
    kept, dropped = scrub({"kong.upstream.uri": url, "kong.balancer.query": f"{param}={CREDENTIAL}&x=1"})
    assert dropped == 0 and CREDENTIAL not in str(kept)
    assert kept["kong.upstream.uri"] == f"https://upstream.test/orders?page=2&{param}={REDACTED}"
    assert kept["kong.balancer.query"] == f"{param}={REDACTED}&x=1"


def test_plain_urls_are_kept_as_they_are():
    kept, _ = scrub({"kong.upstream.uri": "https://upstream.test/orders?page=2&sort=asc", "x": "a=b c"})
    assert kept == {"kong.upstream.uri": "https://upstream.test/orders?page=2&sort=asc", "x": "a=b c"}


@pytest.mark.django_db
def test_an_authorization_header_attribute_is_neither_stored_nor_shown(dp_client, debug_session, login, org_admin):
    trace = trace_json()
    trace["spans"][0]["attributes"].update({
        "Http.Request.Header.Authorization": f"Bearer {CREDENTIAL}",
        "X-Api-Key": CREDENTIAL,
        "kong.upstream.uri": f"/orders?Token={CREDENTIAL}",
    })
    response = post_traces(dp_client, debug_session, [trace])
    assert response.status_code == 202
    assert response.json()["dropped_attributes"] == 4  # these two, and http.url, http.client_ip of trace_json
    stored = Span.objects.get(trace__trace_id=trace["trace_id"], span_id=trace["spans"][0]["span_id"]).attributes
    assert CREDENTIAL not in str(stored) and stored["kong.upstream.uri"] == f"/orders?Token={REDACTED}"
    page = login(org_admin).get(reverse("debug_trace_detail", args=[
        debug_session.control_plane_id, debug_session.pk, trace["trace_id"]])).content.decode()
    assert CREDENTIAL not in page and "kong.upstream.uri" in page


@pytest.mark.django_db
def test_rows_stored_before_the_rule_are_hidden_on_the_trace_page_and_in_the_admin(client, login, org_admin,
                                                                                   dp_client, debug_session):
    trace = trace_json()
    post_traces(dp_client, debug_session, [trace])
    span = Span.objects.get(trace__trace_id=trace["trace_id"], span_id=trace["spans"][0]["span_id"])
    Span.objects.filter(pk=span.pk).update(attributes={"Http.Request.Header.Authorization": CREDENTIAL, "k": "v"})
    page = login(org_admin).get(reverse("debug_trace_detail", args=[
        debug_session.control_plane_id, debug_session.pk, trace["trace_id"]])).content.decode()
    assert CREDENTIAL not in page
    client.force_login(User.objects.create_superuser(email="ops@platform.test", password="x"))
    admin_page = client.get(reverse("admin:debugger_span_change", args=[span.pk])).content.decode()
    assert admin_page and CREDENTIAL not in admin_page and "&quot;k&quot;: &quot;v&quot;" in admin_page


@pytest.mark.django_db
def test_the_migration_scrubs_rows_stored_in_clear(dp_client, debug_session):
    trace = trace_json()
    post_traces(dp_client, debug_session, [trace])
    Span.objects.update(attributes={"Http.Request.Header.Authorization": CREDENTIAL, "Cookie": CREDENTIAL,
                                    "kong.upstream.uri": f"/x?sig={CREDENTIAL}", "kong.plugin.name": "acl"})
    migration = importlib.import_module("debugger.migrations.0002_scrub_span_attributes")
    migration.scrub_stored_attributes(django_apps, None)
    for attributes in Span.objects.values_list("attributes", flat=True):
        assert attributes == {"kong.upstream.uri": f"/x?sig={REDACTED}", "kong.plugin.name": "acl"}


def test_entity_names_take_the_first_span_naming_each_then_the_first_attribute_listed():
    spans = [{"http.method": "GET"}, {"route.name": "first-span", "kong.service.name": "", "service.name": 7},
             {"kong.route.name": "later-span", "service.name": "s" * 300}, {"kong.service.name": "too-late"}]
    assert entity_names(spans, entities=("route", "service")) == {"route": "first-span", "service": "s" * 200}
    both = [{"route.name": "second-key", "kong.route.name": "first-key", "consumer.name": "ada"}]
    assert entity_names(both) == {"route": "first-key", "consumer": "ada"}
    assert entity_names(both, entities=("service",)) == {}


def test_name_attributes_are_those_of_the_names_scrubbed_as_stored():
    attributes = {"kong.route.name": f"Bearer {CREDENTIAL}", "route.name": f"/orders?token={CREDENTIAL}",
                  "service.name": "orders", "kong.plugin.name": "acl", "http.url": "https://api.test/"}
    assert name_attributes(attributes) == {"route.name": f"/orders?token={REDACTED}", "service.name": "orders"}
    naming = {key for keys in NAME_ATTRIBUTES.values() for key in keys}
    assert name_attributes(attributes) == {key: value for key, value in scrub(attributes)[0].items() if key in naming}
