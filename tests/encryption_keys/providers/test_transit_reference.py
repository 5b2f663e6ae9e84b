"""The Transit key reference and the operator's server list: what a pasted reference may name (no server)."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from encryption_keys.providers.base import InvalidKeyRef
from encryption_keys.providers.transit import TransitProvider
from encryption_keys.providers.transit.reference import parse_transit_ref
from encryption_keys.providers.transit.servers import configured_servers

SERVERS = [{"address": "https://bao.acme.example:8200", "regions": ["us"], "auth": {"method": "token", "token": "t"}}]


@pytest.mark.parametrize("text", [
    "transit+https://bao.acme.example:8200/transit/keys/konnect",
    "  TRANSIT+HTTPS://BAO.Acme.Example:8200/transit/keys/konnect/ ",
])
def test_references_are_normalised(text):
    ref = parse_transit_ref(text)
    assert ref.text == "transit+https://bao.acme.example:8200/transit/keys/konnect"
    assert ref.identity == "transit:https://bao.acme.example:8200/transit/keys/konnect"


def test_default_port_and_nested_mount():
    ref = parse_transit_ref("transit+https://bao.acme.example/teams/payments/transit/keys/k.1-a_b")
    assert (ref.address, ref.mount, ref.name) == ("https://bao.acme.example:443", "teams/payments/transit", "k.1-a_b")


@pytest.mark.parametrize(("text", "words"), [
    ("arn:aws:kms:us-west-2:111122223333:key/abc", "starts with transit+https://"),
    ("transit+http://169.254.169.254/transit/keys/k", "only accepted for a server on loopback"),
    ("transit+http://bao.acme.example:8200/transit/keys/k", "only accepted for a server on loopback"),
    ("transit+ftp://bao.acme.example/transit/keys/k", "must start with https://"),
    ("transit+https://user:pw@bao.acme.example/transit/keys/k", "user name or password"),
    ("transit+https://bao.acme.example:99999/transit/keys/k", "port"),
    ("transit+https://bao.acme.example/transit/keys/k?x=1", "must not contain"),
    ("transit+https://bao.acme.example/transit/keys/%2e%2e", "must not contain"),
    ("transit+https://bao.acme.example/transit/k", "/<mount>/keys/<name>"),
    ("transit+https://bao.acme.example/../keys/k", "not a Transit mount path"),
    ("transit+https://bao.acme.example/transit/keys/-k", "not a Transit key name"),
    ("transit+https://bao.acme.example", "names no key"),
])
def test_bad_references_say_why(text, words):
    with pytest.raises(InvalidKeyRef) as refused:
        parse_transit_ref(text)
    assert words in refused.value.reason


def test_parse_refuses_a_server_the_operator_did_not_configure(settings):
    settings.TRANSIT_SERVERS = SERVERS
    provider = TransitProvider()
    assert provider.parse("transit+https://BAO.acme.example:8200/transit/keys/k").location == "bao.acme.example"
    for text in ("transit+https://169.254.169.254/transit/keys/k",  # cloud metadata
                 "transit+https://bao.acme.example:8201/transit/keys/k",  # another port of a configured host
                 "transit+https://bao.acme.example.evil.example:8200/transit/keys/k"):
        with pytest.raises(InvalidKeyRef, match="only calls servers its operator configured"):
            provider.parse(text)
    # The identity of a stored reference does not depend on the configuration.
    settings.TRANSIT_SERVERS = []
    assert TransitProvider().identity("transit+https://bao.acme.example:8200/transit/keys/k").startswith("transit:")


@pytest.mark.parametrize(("servers", "words"), [
    ([{"address": "http://bao.acme.example:8200", "regions": ["us"], "auth": {"method": "token", "token": "t"}}],
     "loopback"),
    ([{"address": "https://b:8200", "regions": [], "auth": {"method": "token", "token": "t"}}], "regions"),
    ([{"address": "https://b:8200", "regions": ["us"], "auth": {"method": "kerberos"}}], "auth.method"),
    ([{"address": "https://b:8200", "regions": ["us"], "auth": {"method": "approle", "role_id": "r"}}], "secret_id"),
    (SERVERS + SERVERS, "twice"),
    ({"address": "https://b"}, "JSON list"),
])
def test_a_bad_server_list_is_an_operator_error(settings, servers, words):
    settings.TRANSIT_SERVERS = servers
    with pytest.raises(ImproperlyConfigured, match=words):
        configured_servers()
    assert words in TransitProvider().configuration_problem()


def test_server_repr_hides_credentials(settings):
    settings.TRANSIT_SERVERS = [{**SERVERS[0], "auth": {"method": "token", "token": "s3cr3t-token"}}]
    assert "s3cr3t" not in repr(configured_servers())


def test_a_bad_server_list_stops_manage_py_check(settings, db):
    """A malformed TRANSIT_SERVERS fails Django's system checks (run by `check` and `migrate` when deploying), not
    only the first link attempt; a good list passes."""
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    from encryption_keys import providers

    settings.TRANSIT_SERVERS = [{"address": "https://bao.acme.example:8200", "regions": ["us"],
                                 "auth": {"method": "kerberos"}}]
    providers.reset()
    try:
        with pytest.raises(SystemCheckError, match=r"TRANSIT_SERVERS\[0\]\.auth\.method"):
            call_command("check")
        settings.TRANSIT_SERVERS = SERVERS
        providers.reset()
        call_command("check")
    finally:
        providers.reset()
