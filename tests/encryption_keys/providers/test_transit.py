"""The Transit provider against a real OpenBao dev server (tests/openbao.py): the data path, the binding to the
organization's encryption context, every error mapping, token and AppRole auth, the checklist, and the SSRF
refusal. The platform's credentials on the server are always a token or AppRole carrying exactly the policy
its `access_statement` tells the customer to grant."""

from __future__ import annotations

import socket
import time
import uuid

import hvac
import hvac.exceptions
import pytest

from encryption_keys.envelope import ErrorCode
from encryption_keys.models import KeyStatus
from encryption_keys.providers.base import KeyServiceError
from encryption_keys.providers.transit import TransitProvider
from encryption_keys.verification import Verdict
from tests.openbao import OpenBaoDevServer, link


@pytest.fixture
def key(openbao, settings, org):
    return link(openbao, settings, org)


@pytest.fixture
def provider(key):
    return key.configure()


def refused(call, **kwargs) -> KeyServiceError:
    with pytest.raises(KeyServiceError) as error:
        call(**kwargs)
    return error.value


# --- the data path ----------------------------------------------------------------------------------------

def test_round_trip_with_the_organizations_context(key, provider, kms_calls):
    context = key.context()
    plaintext, wrapped = provider.generate_data_key(key_ref=key.ref, context=context, organization_id=key.org.pk)
    assert len(plaintext) == 32 and wrapped.startswith(b"vault:v1:") and plaintext not in wrapped
    assert provider.decrypt(key_ref=key.ref, wrapped=wrapped, context=context) == plaintext
    rewrapped = provider.encrypt(key_ref=key.ref, plaintext=plaintext, context=context)
    assert rewrapped != wrapped
    assert provider.decrypt(key_ref=key.ref, wrapped=rewrapped, context=context) == plaintext
    calls = kms_calls(key_ref=key.ref)
    assert [c.operation for c in calls.order_by("created_at", "id")] == ["datakey", "decrypt", "encrypt", "decrypt"]
    assert {c.outcome for c in calls} == {"ok"} and calls.first().location == "127.0.0.1"


@pytest.mark.parametrize("moved", ["konnect:org", "konnect:region", "konnect:purpose", "konnect:datakey"])
def test_a_wrapped_key_moved_to_another_context_does_not_unwrap(key, provider, moved):
    context = key.context()
    _, wrapped = provider.generate_data_key(key_ref=key.ref, context=context)
    elsewhere = {**context, moved: str(uuid.uuid4()) if moved != "konnect:region" else "eu"}
    error = refused(provider.decrypt, key_ref=key.ref, wrapped=wrapped, context=elsewhere)
    assert error.code is ErrorCode.INTEGRITY
    assert error.provider_code == "cipher: message authentication failed"


def test_a_wrapped_key_of_another_key_or_not_transits_is_integrity(openbao, settings, org, key, provider):
    other = link(openbao, settings, org)
    context = key.context()
    _, wrapped = provider.generate_data_key(key_ref=key.ref, context=context)
    openbao.write_policy(key.name, TransitProvider().access_statement(org, key_ref=key.ref).text
                         + TransitProvider().access_statement(org, key_ref=other.ref).text)
    assert refused(provider.decrypt, key_ref=other.ref, wrapped=wrapped, context=context).code is ErrorCode.INTEGRITY
    for garbage in (b"", b"\xff\x00", b"vault:v1:", wrapped[:-8] + b"AAAAAAAA"):
        assert refused(provider.decrypt, key_ref=key.ref, wrapped=garbage, context=context).code is ErrorCode.INTEGRITY


def test_rewrap_moves_to_the_latest_version_of_the_same_key_only(openbao, settings, org, key, provider):
    context = key.context()
    plaintext, wrapped = provider.generate_data_key(key_ref=key.ref, context=context)
    openbao.root.secrets.transit.rotate_key(key.name)
    same_key = key.ref.replace("transit+http://", "TRANSIT+HTTP://") + "/"  # another spelling of the same key
    rewrapped = provider.rewrap(source_ref=key.ref, destination_ref=same_key, wrapped=wrapped, context=context)
    assert rewrapped.startswith(b"vault:v2:")
    assert provider.decrypt(key_ref=key.ref, wrapped=rewrapped, context=context) == plaintext
    other = link(openbao, settings, org)
    assert provider.rewrap(source_ref=key.ref, destination_ref=other.ref, wrapped=wrapped, context=context) is None
    assert provider.rewrap(source_ref="arn:aws:kms:us-west-2:111122223333:key/x", destination_ref=key.ref,
                           wrapped=wrapped, context=context) is None


# --- error mapping ------------------------------------------------------------------------------------------

def test_revoked_policy_is_key_access_denied_and_restoring_it_recovers(openbao, org, key, provider):
    context = key.context()
    plaintext, wrapped = provider.generate_data_key(key_ref=key.ref, context=context)
    policy = TransitProvider().access_statement(org, key_ref=key.ref).text
    openbao.delete_policy(key.name)
    for call, kwargs in ((provider.generate_data_key, {}), (provider.decrypt, {"wrapped": wrapped}),
                         (provider.rewrap, {"source_ref": key.ref, "destination_ref": key.ref, "wrapped": wrapped})):
        kwargs = {"key_ref": key.ref, **kwargs} if call != provider.rewrap else kwargs
        error = refused(call, context=context, **kwargs)
        assert (error.code, error.provider_code) == (ErrorCode.KEY_ACCESS_DENIED, "permission denied")
        assert plaintext.hex() not in str(error.detail) and "vault:" not in error.detail
    assert provider.read_state(key_ref=key.ref).status == KeyStatus.ACCESS_DENIED
    openbao.write_policy(key.name, policy)
    assert provider.decrypt(key_ref=key.ref, wrapped=wrapped, context=context) == plaintext


def test_deleted_key_is_key_not_found_and_encrypt_does_not_create_it_again(openbao, key, provider):
    context = key.context()
    plaintext, wrapped = provider.generate_data_key(key_ref=key.ref, context=context)
    openbao.root.secrets.transit.update_key_configuration(key.name, deletion_allowed=True)
    openbao.root.secrets.transit.delete_key(key.name)
    assert refused(provider.decrypt, key_ref=key.ref, wrapped=wrapped, context=context).code is ErrorCode.KEY_NOT_FOUND
    assert refused(provider.generate_data_key, key_ref=key.ref, context=context).code is ErrorCode.KEY_NOT_FOUND
    error = refused(provider.encrypt, key_ref=key.ref, plaintext=plaintext, context=context)
    # The policy grants update, not create, on encrypt: Transit refuses to create the key again (an upsert would
    # wrap data under a brand-new key), and says so as permission denied.
    assert (error.code, error.provider_code) == (ErrorCode.KEY_ACCESS_DENIED, "permission denied")
    with pytest.raises(hvac.exceptions.InvalidPath):
        openbao.root.secrets.transit.read_key(key.name)
    reading = provider.read_state(key_ref=key.ref)
    assert reading.status == KeyStatus.NOT_FOUND


def test_min_decryption_version_above_the_wrapping_version_is_key_disabled_naming_the_version(openbao, key, provider):
    context = key.context()
    linked = provider.read_state(key_ref=key.ref)
    plaintext, wrapped = provider.generate_data_key(key_ref=key.ref, context=context)
    openbao.root.secrets.transit.rotate_key(key.name)
    openbao.root.secrets.transit.update_key_configuration(key.name, min_decryption_version=2)
    error = refused(provider.decrypt, key_ref=key.ref, wrapped=wrapped, context=context)
    assert error.code is ErrorCode.KEY_DISABLED
    assert "lower min_decryption_version back to 1" in error.detail
    assert "min_decryption_version" in provider.remedy(error.code)
    error = refused(provider.rewrap, source_ref=key.ref, destination_ref=key.ref, wrapped=wrapped, context=context)
    assert error.code is ErrorCode.KEY_DISABLED
    # The sweep's one read sees it too: version 1 wrapped data keys since the link.
    reading = provider.read_state(key_ref=key.ref, previous_metadata=linked.metadata)
    assert reading.status == KeyStatus.DISABLED and "lower it back to 1" in reading.error
    openbao.root.secrets.transit.update_key_configuration(key.name, min_decryption_version=1)
    assert provider.decrypt(key_ref=key.ref, wrapped=wrapped, context=context) == plaintext
    assert provider.read_state(key_ref=key.ref, previous_metadata=reading.metadata).status != KeyStatus.DISABLED


def test_soft_deleted_key_is_key_disabled_until_restored(openbao, key, provider):
    context = key.context()
    plaintext, wrapped = provider.generate_data_key(key_ref=key.ref, context=context)
    openbao.root.delete(f"transit/keys/{key.name}/soft-delete")
    assert refused(provider.decrypt, key_ref=key.ref, wrapped=wrapped, context=context).code is ErrorCode.KEY_DISABLED
    assert provider.read_state(key_ref=key.ref).status == KeyStatus.DISABLED
    openbao.root.write(f"transit/keys/{key.name}/soft-delete-restore")
    assert provider.decrypt(key_ref=key.ref, wrapped=wrapped, context=context) == plaintext


def test_sealed_server_is_kms_unavailable(openbao, key, provider):
    context = key.context()
    plaintext, wrapped = provider.generate_data_key(key_ref=key.ref, context=context)
    openbao.seal()
    try:
        error = refused(provider.decrypt, key_ref=key.ref, wrapped=wrapped, context=context)
        assert error.code is ErrorCode.KMS_UNAVAILABLE and error.retryable
        assert provider.read_state(key_ref=key.ref).status == KeyStatus.UNREACHABLE
        checklist = provider.verify(organization=key.org, region="us", key_ref=key.ref)
        assert checklist.get("reachable").verdict == Verdict.FAIL and checklist.kms_unreachable
    finally:
        openbao.unseal()
    assert provider.decrypt(key_ref=key.ref, wrapped=wrapped, context=context) == plaintext


def test_stopped_server_is_kms_unavailable(tmp_path, settings, org):
    server = OpenBaoDevServer(tmp_path).start()
    try:
        key = link(server, settings, org)
        provider = key.configure()
        context = key.context()
        _, wrapped = provider.generate_data_key(key_ref=key.ref, context=context)
    finally:
        server.stop()
    error = refused(provider.decrypt, key_ref=key.ref, wrapped=wrapped, context=context)
    assert (error.code, error.provider_code) == (ErrorCode.KMS_UNAVAILABLE, "ConnectionError")
    assert provider.read_state(key_ref=key.ref).status == KeyStatus.UNREACHABLE


# --- authentication ------------------------------------------------------------------------------------------

def test_approle_login_and_a_revoked_secret_id(openbao, key):
    role_id, secret_id = openbao.approle(key.name, key.name)
    provider = key.configure(method="approle", role_id=role_id, secret_id=secret_id)
    context = key.context()
    plaintext, wrapped = provider.generate_data_key(key_ref=key.ref, context=context)
    assert provider.decrypt(key_ref=key.ref, wrapped=wrapped, context=context) == plaintext
    checklist = provider.verify(organization=key.org, region="us", key_ref=key.ref)
    assert checklist.get("authenticates").verdict == Verdict.PASS and "AppRole" in checklist.get("authenticates").explanation
    assert checklist.ok, checklist.verdicts()

    provider = key.configure(method="approle", role_id=role_id, secret_id="not-the-secret-id")
    assert refused(provider.generate_data_key, key_ref=key.ref, context=context).code is ErrorCode.KEY_ACCESS_DENIED
    checklist = provider.verify(organization=key.org, region="us", key_ref=key.ref)
    assert checklist.get("authenticates").verdict == Verdict.FAIL
    assert checklist.get("key_exists").verdict == Verdict.NOT_RUN


def test_an_approle_token_revoked_on_the_server_is_replaced_by_a_new_login(openbao, key):
    role_id, secret_id = openbao.approle(key.name, key.name)
    provider = key.configure(method="approle", role_id=role_id, secret_id=secret_id)
    context = key.context()
    plaintext, wrapped = provider.generate_data_key(key_ref=key.ref, context=context)
    token = provider.connections.client(provider.servers()[key.server.address]).token
    openbao.root.auth.token.revoke(token)
    assert provider.decrypt(key_ref=key.ref, wrapped=wrapped, context=context) == plaintext


def test_an_expired_approle_token_is_replaced(openbao, key):
    role_id, secret_id = openbao.approle(key.name, key.name, ttl="2s")
    provider = key.configure(method="approle", role_id=role_id, secret_id=secret_id)
    context = key.context()
    plaintext, wrapped = provider.generate_data_key(key_ref=key.ref, context=context)
    token = provider.connections.client(provider.servers()[key.server.address]).token
    expired = hvac.Client(url=openbao.address, token=token)
    deadline = time.monotonic() + 30
    while True:  # until the server itself no longer accepts the token
        try:
            expired.auth.token.lookup_self()
        except hvac.exceptions.Forbidden:
            break
        assert time.monotonic() < deadline, "the AppRole token never expired"
        time.sleep(0.1)
    assert provider.decrypt(key_ref=key.ref, wrapped=wrapped, context=context) == plaintext
    assert provider.connections.client(provider.servers()[key.server.address]).token != token


def test_a_bad_configured_token_fails_authentication(key):
    provider = key.configure(method="token", token="not-a-token")
    checklist = provider.verify(organization=key.org, region="us", key_ref=key.ref)
    assert checklist.verdicts()["reachable"] == "pass"
    assert checklist.get("authenticates").verdict == Verdict.FAIL
    assert checklist.get("authenticates").error_code == ErrorCode.KEY_ACCESS_DENIED


# --- the checklist --------------------------------------------------------------------------------------------

def test_checklist_of_a_good_key(openbao, key, provider):
    checklist = provider.verify(organization=key.org, region="us", key_ref=f"  {key.ref}/ ")
    assert checklist.ok, checklist.verdicts()
    assert checklist.verdicts() == {
        "ref_syntax": "pass", "server": "pass", "reachable": "pass", "authenticates": "pass", "key_exists": "pass",
        "key_type": "pass", "derived": "pass", "not_exportable": "pass", "deletion": "pass",
        "rotation": "warn", "min_decryption_version": "pass", "round_trip": "pass",
    }
    assert checklist.key_ref == key.ref and checklist.provider == "transit"  # normalised
    assert checklist.metadata["derived"] is True and checklist.metadata["oldest_wrapping_version"] == 1
    assert ("Derived", "yes") in provider.metadata_rows(checklist.metadata)


def test_checklist_warnings_for_deletion_rotation_and_old_versions(openbao, settings, org):
    key = link(openbao, settings, org, deletion_allowed=True, auto_rotate_period="24h")
    openbao.root.secrets.transit.rotate_key(key.name)
    openbao.root.secrets.transit.update_key_configuration(key.name, min_decryption_version=2)
    checklist = key.configure().verify(organization=org, region="us", key_ref=key.ref)
    assert checklist.ok
    assert (checklist.get("deletion").verdict, checklist.get("rotation").verdict,
            checklist.get("min_decryption_version").verdict) == (Verdict.WARN, Verdict.PASS, Verdict.WARN)


@pytest.mark.parametrize(("options", "failing", "still_run"), [
    ({"exportable": True}, "not_exportable", True),
    ({"key_type": "aes128-gcm96"}, "key_type", False),
    ({"key_type": "chacha20-poly1305"}, "key_type", False),
    ({"derived": False}, "derived", False),
])
def test_checklist_refuses_bad_keys(openbao, settings, org, options, failing, still_run):
    key = link(openbao, settings, org, **options)
    checklist = key.configure().verify(organization=org, region="us", key_ref=key.ref)
    assert not checklist.ok
    assert [check.id for check in checklist.failures] == [failing]
    assert (checklist.get("round_trip").verdict == Verdict.PASS) is still_run


def test_a_non_derived_key_ignores_the_context_which_is_why_it_is_refused(openbao, settings, org):
    key = link(openbao, settings, org, derived=False)
    provider = key.configure()
    context = key.context()
    plaintext, wrapped = provider.generate_data_key(key_ref=key.ref, context=context)
    other = {**context, "konnect:org": str(uuid.uuid4())}
    assert provider.decrypt(key_ref=key.ref, wrapped=wrapped, context=other) == plaintext  # the attack works…
    assert provider.read_state(key_ref=key.ref).status == KeyStatus.ACCESS_DENIED  # …so such a key is unusable


def test_checklist_of_a_missing_key_and_a_refused_read(openbao, key, provider):
    missing = key.ref.replace(key.name, "no-such-key")
    checklist = provider.verify(organization=key.org, region="us", key_ref=missing)
    assert checklist.get("key_exists").verdict == Verdict.FAIL
    # The policy names one key, so another name is refused rather than reported missing: the check says both.
    assert checklist.get("key_exists").error_code == ErrorCode.KEY_ACCESS_DENIED
    assert "typo" in checklist.get("key_exists").explanation
    assert checklist.get("round_trip").verdict == Verdict.NOT_RUN
    openbao.delete_policy(key.name)
    checklist = provider.verify(organization=key.org, region="us", key_ref=key.ref)
    assert checklist.get("key_exists").error_code == ErrorCode.KEY_ACCESS_DENIED


def test_access_statement_grants_exactly_the_platforms_paths(org):
    statement = TransitProvider().access_statement(
        org, key_ref="transit+https://bao.acme.example:8200/teams/transit/keys/konnect")
    assert statement.language == "hcl"
    for path, capability in (("datakey/plaintext", "update"), ("decrypt", "update"), ("encrypt", "update"),
                             ("rewrap", "update"), ("keys", "read")):
        assert f'path "teams/transit/{path}/konnect" {{\n  capabilities = ["{capability}"]\n}}' in statement.text
    assert "create" not in statement.text and "*" not in statement.text


# --- SSRF: what a customer pastes never decides where a request goes ------------------------------------------

@pytest.fixture
def listener():
    """A loopback port that records whether anything connected to it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.settimeout(0.3)

        def connected() -> bool:
            try:
                sock.accept()[0].close()
            except TimeoutError:
                return False
            return True

        yield sock.getsockname()[1], connected


def test_a_reference_to_a_server_not_configured_is_refused_without_a_request(key, provider, listener, kms_calls):
    port, connected = listener
    for ref in (f"transit+http://127.0.0.1:{port}/transit/keys/{key.name}",
                "transit+http://169.254.169.254/latest/meta-data/keys/iam",
                "transit+https://169.254.169.254:443/transit/keys/k"):
        checklist = provider.verify(organization=key.org, region="us", key_ref=ref)
        assert not checklist.ok
        assert checklist.failures[0].id in ("ref_syntax", "server")
        assert {check.verdict for check in checklist.checks[2:]} == {Verdict.NOT_RUN}
        with pytest.raises(KeyServiceError):
            provider.generate_data_key(key_ref=ref, context=key.context())
        with pytest.raises(KeyServiceError):
            provider.read_key(ref)
        assert provider.read_state(key_ref=ref).status == KeyStatus.UNREACHABLE
    assert not connected()
    assert not kms_calls().exists()


def test_a_server_serves_only_its_regions_and_organizations(openbao, settings, org, other_org, key):
    token = openbao.token(key.name)
    settings.TRANSIT_SERVERS = [{"address": openbao.address, "regions": ["eu"], "organizations": [str(other_org.pk)],
                                 "auth": {"method": "token", "token": token}}]
    provider = TransitProvider()
    assert provider.verify(organization=org, region="us", key_ref=key.ref).failures[0].id == "server"
    assert provider.verify(organization=org, region="eu", key_ref=key.ref).failures[0].id == "server"
    error = refused(provider.generate_data_key, key_ref=key.ref, context=key.context())
    assert (error.code, error.provider_code) == (ErrorCode.KEY_ACCESS_DENIED, "server not allowed")
