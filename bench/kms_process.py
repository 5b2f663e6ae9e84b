"""The local KMS server in a child process, for benchmarks: KMS work then does not share the measuring
interpreter's lock, as it does not in production."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path


class KmsProcess:
    """`python -m devtools.local_kms` in a child process; keys are administered over its HTTP API."""

    def __init__(self, *, latency_ms: float = 0.0):
        """`latency_ms`: how much later the server answers each KMS request (a network round trip)."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devtools.local_kms", "--port", str(port),
             "--create-platform-keys", "us=us-west-2+us-east-2", "--latency-ms", str(latency_ms)],
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
        )
        self.endpoint_url, self.platform_keys = f"http://127.0.0.1:{port}", {}
        for line in self.process.stdout:
            if line.startswith("PLATFORM_KMS_KEYS="):
                geo, _, arn = line.strip().split("=", 1)[1].partition("=")
                self.platform_keys[geo] = arn
                break
        if not self.platform_keys:
            raise RuntimeError("the local KMS server process did not start")

    def client(self, region: str = "us-west-2"):
        import boto3  # the bench administers test keys directly; the app reaches KMS only through encryption_keys/providers/aws

        return boto3.client("kms", region_name=region, endpoint_url=self.endpoint_url,
                            aws_access_key_id="local", aws_secret_access_key="local")  # noqa: S106

    def create_cmek(self, description: str) -> str:
        """A customer key as the checklist wants it: multi-Region, rotation on, replicated to the geo's other region."""
        client = self.client()
        arn = client.create_key(Description=description, MultiRegion=True)["KeyMetadata"]["Arn"]
        client.enable_key_rotation(KeyId=arn)
        client.replicate_key(KeyId=arn, ReplicaRegion="us-east-2")
        return arn

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
