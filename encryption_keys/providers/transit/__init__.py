"""OpenBao / HashiCorp Vault Transit as a key provider.

Reference: ``transit+https://<host>:<port>/<mount>/keys/<name>`` (``reference.py``); the platform calls only
the servers its operator configured in ``TRANSIT_SERVERS`` (``servers.py``), authenticating as configured there.

The data path, one Transit call each:
- a new data key is ``<mount>/datakey/plaintext/<name>`` (Transit generates it and returns it with its wrapped
  form; ``datakey/wrapped`` would return the wrapped form only and cost a second call to learn the key);
- the wrapped data key stored is Transit's ciphertext text, ``vault:v<version>:<base64>``, as ASCII bytes;
- unwrap is ``decrypt``, wrap an existing data key ``encrypt``, re-wrap ``rewrap`` (to the key's latest version;
  between two different keys the caller decrypts and encrypts).

Binding to the organization's encryption context: the key must be a derived key (``derived=true``), and every
call carries the context as Transit ``context`` (``transit_context``), from which Transit derives the key that
wraps this one data key. A wrapped data key moved to another organization, region, purpose or data key id is
decrypted under another derived key and fails authentication (``integrity``). Transit's ``associated_data``
would bind the same way but ``datakey`` and ``rewrap`` do not take it; a non-derived key ignores ``context``
silently, which is why the checklist refuses one.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

import requests
from django.core.exceptions import ImproperlyConfigured

from encryption_keys.envelope import ERROR_CODES, ErrorCode
from encryption_keys.models import KeyStatus
from encryption_keys.providers.base import (
    AccessStatement,
    InvalidKeyRef,
    KeyHealth,
    KeyProvider,
    KeyRef,
    KeyServiceError,
)
from encryption_keys.providers.transit import checks
from encryption_keys.providers.transit.client import Connections, call, logged, new_client
from encryption_keys.providers.transit.reference import EXAMPLE, PREFIX, TransitRef, parse_transit_ref
from encryption_keys.providers.transit.servers import TransitServer, configured_servers

#: Separates our contexts from any other use of the same Transit key (the version lets the format change).
CONTEXT_LABEL = b"konnect-admin/v1:"
_CIPHERTEXT = re.compile(r"vault:v(\d+):[A-Za-z0-9+/=]+")
DATA_KEY_BYTES = 32


def transit_context(context: dict[str, str]) -> str:
    """The canonical serialisation of an encryption context, as Transit's base64 ``context``: sorted keys,
    no whitespace, UTF-8, after a label."""
    canonical = json.dumps(context, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return base64.b64encode(CONTEXT_LABEL + canonical.encode()).decode()


def ciphertext_version(wrapped: bytes) -> int:
    """The key version of a stored wrapped data key; KeyServiceError(integrity) when it is not Transit's."""
    try:
        text = bytes(wrapped).decode("ascii")
    except UnicodeDecodeError:
        text = ""
    match = _CIPHERTEXT.fullmatch(text)
    if match is None:
        raise KeyServiceError(ErrorCode.INTEGRITY, provider_code="not a Transit ciphertext",
                              detail="the wrapped data key is not a Transit ciphertext (vault:v<n>:…)")
    return int(match.group(1))


class TransitProvider(KeyProvider):
    name = "transit"
    label = "OpenBao / Vault Transit"
    ref_label = "Transit key reference"
    ref_example = EXAMPLE

    def __init__(self):
        self.connections = Connections()
        self._servers: dict[str, TransitServer] | None = None

    # --- references and configuration ---------------------------------------------------------------------
    @classmethod
    def recognises(cls, text: str) -> bool:
        return (text or "").strip().lower().startswith(PREFIX)

    def parse(self, text: str) -> KeyRef:
        ref = parse_transit_ref(text)
        server = self.server_for(ref)
        return KeyRef(ref=ref.text, provider=self.name, identity=ref.identity, location=server.host)

    def identity(self, key_ref: str) -> str:
        try:
            return parse_transit_ref(key_ref).identity  # syntax only: a server no longer configured keeps its keys
        except InvalidKeyRef:
            return (key_ref or "").strip()

    def servers(self) -> dict[str, TransitServer]:
        if self._servers is None:
            self._servers = configured_servers()
        return self._servers

    def server_for(self, ref: TransitRef) -> TransitServer:
        """The configured server of ``ref``; InvalidKeyRef when the operator configured none at its address."""
        try:
            server = self.servers().get(ref.address)
        except ImproperlyConfigured as problem:
            raise InvalidKeyRef(f"Transit is not configured correctly on this installation: {problem}") from None
        if server is None:
            raise InvalidKeyRef(
                f"This installation does not call the Transit server at {ref.address}: the platform only calls "
                "servers its operator configured. Ask the operator to add it (TRANSIT_SERVERS), or use a server "
                "they list."
            )
        return server

    def configuration_problem(self) -> str | None:
        """A malformed TRANSIT_SERVERS; none configured is no problem (no Transit key can be linked then)."""
        return self.settings_problem()

    def settings_problem(self) -> str | None:
        try:
            self.servers()
        except ImproperlyConfigured as problem:
            return str(problem)
        return None

    def reset_clients(self) -> None:
        self.connections.reset()
        self._servers = None

    # --- the data path ----------------------------------------------------------------------------------
    def _target(self, key_ref: str, context: dict | None) -> tuple[TransitRef, TransitServer]:
        try:
            ref = parse_transit_ref(key_ref)
            server = self.server_for(ref)
        except InvalidKeyRef as invalid:
            # A stored reference whose server the operator removed: nothing is wrong with the key itself.
            raise KeyServiceError(ErrorCode.KMS_UNAVAILABLE, provider_code="server not configured",
                                  key_ref=key_ref, detail=invalid.reason[:300]) from None
        region, org = (context or {}).get("konnect:region"), (context or {}).get("konnect:org")
        if region is not None and not server.serves(region=region, organization_id=org):
            raise KeyServiceError(ErrorCode.KEY_ACCESS_DENIED, provider_code="server not allowed",
                                  key_ref=key_ref, detail=f"{server.address} does not serve this organization "
                                  f"in region {region} (TRANSIT_SERVERS)")
        return ref, server

    def _call(self, operation: str, key_ref: str, context: dict | None, action, organization_id=None):
        ref, server = self._target(key_ref, context)
        return call(self.connections, server, operation, ref.text, lambda client: action(client, ref),
                    organization_id=organization_id, context=context)

    def generate_data_key(self, *, key_ref: str, context: dict[str, str], organization_id=None) -> tuple[bytes, bytes]:
        response = self._call("datakey", key_ref, context, lambda client, ref: client.secrets.transit.generate_data_key(
            ref.name, key_type="plaintext", context=transit_context(context), mount_point=ref.mount),
            organization_id)
        data = response["data"]
        plaintext = base64.b64decode(data["plaintext"])
        if len(plaintext) != DATA_KEY_BYTES:
            raise KeyServiceError(ErrorCode.INTEGRITY, provider_code="datakey size", key_ref=key_ref,
                                  detail=f"Transit returned a {len(plaintext)}-byte data key")
        return plaintext, data["ciphertext"].encode("ascii")

    def decrypt(self, *, key_ref: str, wrapped: bytes, context: dict[str, str], organization_id=None) -> bytes:
        version = ciphertext_version(wrapped)
        try:
            response = self._call("decrypt", key_ref, context, lambda client, ref: client.secrets.transit.decrypt_data(
                ref.name, bytes(wrapped).decode("ascii"), context=transit_context(context), mount_point=ref.mount),
                organization_id)
        except KeyServiceError as error:
            raise _name_the_version(error, version) from None
        try:
            return base64.b64decode(response["data"]["plaintext"], validate=True)
        except (binascii.Error, KeyError, TypeError):
            raise KeyServiceError(ErrorCode.INTEGRITY, provider_code="decrypt answer", key_ref=key_ref,
                                  detail="Transit's decrypt answer carried no data key") from None

    def encrypt(self, *, key_ref: str, plaintext: bytes, context: dict[str, str], organization_id=None) -> bytes:
        response = self._call("encrypt", key_ref, context, lambda client, ref: client.secrets.transit.encrypt_data(
            ref.name, base64.b64encode(plaintext).decode(), context=transit_context(context), mount_point=ref.mount),
            organization_id)
        return response["data"]["ciphertext"].encode("ascii")

    def rewrap(self, *, source_ref: str, destination_ref: str, wrapped: bytes, context: dict[str, str],
               organization_id=None) -> bytes | None:
        if not self.recognises(source_ref) or self.identity(source_ref) != self.identity(destination_ref):
            return None  # another key: Transit cannot move a ciphertext between keys
        version = ciphertext_version(wrapped)
        try:
            response = self._call("rewrap", destination_ref, context, lambda client, ref: client.secrets.transit.rewrap_data(
                ref.name, bytes(wrapped).decode("ascii"), context=transit_context(context), mount_point=ref.mount),
                organization_id)
        except KeyServiceError as error:
            raise _name_the_version(error, version) from None
        return response["data"]["ciphertext"].encode("ascii")

    # --- health and linking -------------------------------------------------------------------------------
    def read_key(self, key_ref: str, *, organization_id=None) -> dict:
        """``<mount>/keys/<name>``: the key's configuration (one call)."""
        response = self._call("keys.read", key_ref, None, lambda client, ref: client.secrets.transit.read_key(
            ref.name, mount_point=ref.mount), organization_id)
        return response["data"]

    def read_state(self, *, key_ref: str, organization_id=None, previous_metadata: dict | None = None) -> KeyHealth:
        try:
            key = self.read_key(key_ref, organization_id=organization_id)
        except KeyServiceError as error:
            return _refused(error)
        metadata = checks.snapshot(key, previous_metadata)
        return checks.state_of(metadata)

    def read_health(self, *, key_ref: str, organization_id, region: str,
                    previous_metadata: dict | None = None) -> KeyHealth:
        reading = self.read_state(key_ref=key_ref, organization_id=organization_id,
                                  previous_metadata=previous_metadata)
        if reading.status not in (KeyStatus.HEALTHY, KeyStatus.ROTATION_DISABLED):
            return reading
        try:
            checks.prove_key_use(self, key_ref=key_ref, organization_id=organization_id, region=region,
                                 purpose="health-check")
        except KeyServiceError as error:
            status = ERROR_CODES[error.code].key_status or KeyStatus.UNREACHABLE
            return KeyHealth(status, reading.metadata, error=f"{error.operation}: {error.detail}"[:500])
        return reading

    def verify(self, *, organization, region: str, key_ref: str):
        return checks.verify(self, organization=organization, region=region, key_ref=key_ref)

    def access_statement(self, organization, *, key_ref: str | None = None) -> AccessStatement:
        return checks.access_statement(organization, key_ref=key_ref)

    def remedy(self, code: ErrorCode) -> str:
        return checks.REMEDIES.get(code, "")

    def metadata_rows(self, metadata: dict) -> list[tuple[str, str]]:
        return checks.metadata_rows(metadata)

    # --- what the checklist asks beyond the data path ----------------------------------------------------
    def server_health(self, server: TransitServer, *, key_ref: str, organization_id=None) -> dict:
        """``sys/health`` (unauthenticated, so it proves the server answers whatever the credentials): its
        JSON, which says ``sealed`` and ``initialized`` (a sealed server answers 503 with the same body)."""

        def read():
            answer = new_client(server).sys.read_health_status(method="GET", standby_ok=True)
            if isinstance(answer, requests.Response):
                try:
                    return answer.json()
                except ValueError:
                    raise requests.exceptions.HTTPError(f"sys/health answered {answer.status_code}") from None
            return answer

        return logged(server, "sys.health", key_ref, read, organization_id=organization_id)

    def authenticate(self, server: TransitServer, *, key_ref: str, organization_id=None) -> dict:
        """Prove the configured method works: an AppRole login, or the configured token's own lookup."""
        if server.auth_method == "approle":
            return logged(server, "auth.approle.login", key_ref, lambda: self.connections.login(server),
                          organization_id=organization_id)
        return logged(server, "auth.token.lookup-self", key_ref,
                      lambda: self.connections.client(server).auth.token.lookup_self(),
                      organization_id=organization_id)


def _name_the_version(error: KeyServiceError, version: int) -> KeyServiceError:
    """A data key wrapped by a version below min_decryption_version: say which, for the remedy."""
    if error.code is ErrorCode.KEY_DISABLED and "too old" in error.provider_code:
        error.detail = (f"{error.provider_code}: this data key was wrapped by version {version} of the key; "
                        f"lower min_decryption_version back to {version}")[:300]
    return error


def _refused(error: KeyServiceError) -> KeyHealth:
    return KeyHealth(ERROR_CODES[error.code].key_status or KeyStatus.UNREACHABLE, error=error.detail[:500])
