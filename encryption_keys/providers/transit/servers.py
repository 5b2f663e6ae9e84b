"""The Transit servers the platform may call, as the operator configured them (``settings.TRANSIT_SERVERS``).

A customer pastes a key reference; the platform calls a server only when the reference names one of these
addresses exactly. Nothing a customer types decides where a request goes (no SSRF: a pasted
``transit+http://169.254.169.254/…`` is refused before any request), nor how the platform authenticates.

Each entry (JSON, one object per server)::

    {"address": "https://bao.acme.example:8200",       # https; http only on loopback (dev servers)
     "regions": ["us", "eu"],                         # the Konnect regions whose data it may protect
     "organizations": ["<organization id>", …],       # optional: only these organizations may link its keys
     "auth": {"method": "token", "token": "…"}
          or {"method": "approle", "role_id": "…", "secret_id": "…", "mount": "approle"},
     "ca_bundle": "/etc/konnect/bao-ca.pem",          # optional: the CA that signed the server's certificate
     "namespace": "acme"}                             # optional: OpenBao / Vault Enterprise namespace
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

AUTH_METHODS = ("token", "approle")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalise_address(text: str) -> str:
    """``scheme://host:port`` in lower case with the port spelled out; ValueError says what is wrong."""
    parts = urlsplit(text.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ValueError("the address must start with https:// (http:// only for a server on loopback)")
    if parts.username is not None or parts.password is not None:
        raise ValueError("the address must not carry a user name or password")
    if parts.query or parts.fragment:
        raise ValueError("the address must not carry a query or fragment")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError("the port is not a number between 1 and 65535") from None
    if not host:
        raise ValueError("the address has no host")
    if scheme == "http" and not is_loopback(host):
        raise ValueError("http:// is only accepted for a server on loopback (127.0.0.1, ::1, localhost); use https://")
    port = port or (443 if scheme == "https" else 80)
    shown_host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown_host}:{port}"


@dataclass(frozen=True)
class TransitServer:
    address: str  # normalised
    regions: tuple[str, ...]
    auth_method: str
    token: str = ""
    role_id: str = ""
    secret_id: str = ""
    approle_mount: str = "approle"
    organizations: tuple[str, ...] = ()
    ca_bundle: str = ""
    namespace: str = ""

    @property
    def host(self) -> str:
        return urlsplit(self.address).hostname or ""

    def serves(self, *, region: str, organization_id=None) -> bool:
        if region not in self.regions:
            return False
        return not self.organizations or organization_id is None or str(organization_id) in self.organizations

    def __repr__(self) -> str:  # never the token or secret id
        return f"TransitServer({self.address!r}, regions={self.regions!r}, auth={self.auth_method!r})"


def _server(entry: object, index: int) -> TransitServer:
    where = f"TRANSIT_SERVERS[{index}]"
    if not isinstance(entry, dict):
        raise ImproperlyConfigured(f"{where} must be an object with address, regions and auth")
    try:
        address = normalise_address(str(entry.get("address") or ""))
    except ValueError as invalid:
        raise ImproperlyConfigured(f"{where}.address: {invalid}") from None
    regions = entry.get("regions")
    if not isinstance(regions, list) or not regions or not all(isinstance(r, str) and r for r in regions):
        raise ImproperlyConfigured(f"{where}.regions must list the Konnect regions it serves, e.g. [\"us\"]")
    auth = entry.get("auth")
    method = auth.get("method") if isinstance(auth, dict) else None
    if method not in AUTH_METHODS:
        raise ImproperlyConfigured(f"{where}.auth.method must be one of {', '.join(AUTH_METHODS)}")
    if method == "token" and not auth.get("token"):
        raise ImproperlyConfigured(f"{where}.auth.token is required for the token method")
    if method == "approle" and not (auth.get("role_id") and auth.get("secret_id")):
        raise ImproperlyConfigured(f"{where}.auth.role_id and secret_id are required for the approle method")
    organizations = entry.get("organizations") or []
    if not isinstance(organizations, list):
        raise ImproperlyConfigured(f"{where}.organizations must be a list of organization ids")
    return TransitServer(
        address=address,
        regions=tuple(regions),
        auth_method=method,
        token=str(auth.get("token") or ""),
        role_id=str(auth.get("role_id") or ""),
        secret_id=str(auth.get("secret_id") or ""),
        approle_mount=str(auth.get("mount") or "approle").strip("/"),
        organizations=tuple(str(org) for org in organizations),
        ca_bundle=str(entry.get("ca_bundle") or ""),
        namespace=str(entry.get("namespace") or ""),
    )


def configured_servers() -> dict[str, TransitServer]:
    """The configured servers by normalised address; ImproperlyConfigured names the entry that is wrong."""
    entries = getattr(settings, "TRANSIT_SERVERS", None) or []
    if not isinstance(entries, list):
        raise ImproperlyConfigured("TRANSIT_SERVERS must be a JSON list of server objects")
    servers: dict[str, TransitServer] = {}
    for index, entry in enumerate(entries):
        server = _server(entry, index)
        if server.address in servers:
            raise ImproperlyConfigured(f"TRANSIT_SERVERS lists {server.address} twice")
        servers[server.address] = server
    return servers
