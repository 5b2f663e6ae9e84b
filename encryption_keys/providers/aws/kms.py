"""The one door to AWS KMS: clients, typed errors, multi-region failover, and a record of every call.

Nothing outside ``encryption_keys/providers/aws/`` imports boto3; everything else reaches KMS through
``AwsKmsProvider`` (the key-provider seam).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
from django.conf import settings

from encryption_keys import call_log
from encryption_keys.envelope import ErrorCode
from encryption_keys.providers.aws.arns import aws_region_of, failover_arns
from encryption_keys.providers.base import KeyServiceError, ProviderNotConfigured

_ERROR_CODES = {
    "DisabledException": ErrorCode.KEY_DISABLED,
    "KMSInvalidStateException": ErrorCode.KEY_PENDING_DELETION,
    "AccessDeniedException": ErrorCode.KEY_ACCESS_DENIED,
    "AccessDenied": ErrorCode.KEY_ACCESS_DENIED,
    "InvalidKeyUsageException": ErrorCode.KEY_ACCESS_DENIED,
    "NotFoundException": ErrorCode.KEY_NOT_FOUND,
    "IncorrectKeyException": ErrorCode.INTEGRITY,
    "InvalidCiphertextException": ErrorCode.INTEGRITY,
    "ThrottlingException": ErrorCode.KMS_UNAVAILABLE,
    "LimitExceededException": ErrorCode.KMS_UNAVAILABLE,
    "KMSInternalException": ErrorCode.KMS_UNAVAILABLE,
    "DependencyTimeoutException": ErrorCode.KMS_UNAVAILABLE,
    "KeyUnavailableException": ErrorCode.KMS_UNAVAILABLE,
}
_UNREACHABLE = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.HTTPClientError,
)

# boto3 found no credentials in its chain: the platform is not configured, no key is at fault.
_NO_CREDENTIALS = (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError)
NO_CREDENTIALS_MESSAGE = (
    "No AWS credentials for KMS: set AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, "
    "or an instance role) or KMS_ENDPOINT_URL for a local KMS."
)


class KmsNotConfigured(ProviderNotConfigured):
    """No KMS call can succeed until the operator sets what the message names; not a key's health, so it is not a
    KmsError (a key's status never changes for it)."""


def configuration_problem() -> str | None:
    """What to set before a KMS call can succeed, or None (asked once by commands, not on every call)."""
    if settings.KMS_ENDPOINT_URL or settings.KMS_ENDPOINT_URLS:
        return None  # a local KMS: client_for gives it placeholder credentials (a call elsewhere still maps)
    if boto3.session.Session().get_credentials() is None:
        return NO_CREDENTIALS_MESSAGE
    return None


class KmsError(KeyServiceError):
    """A KMS call failed; `aws_code` (the seam's `provider_code`) is KMS's own error name, `code` ours."""

    def __init__(self, code, *, aws_code: str = "", **kwargs):
        super().__init__(code, provider_code=aws_code, **kwargs)

    @property
    def aws_code(self) -> str:
        return self.provider_code


_clients: dict[tuple[str, str | None], Any] = {}
_clients_lock = threading.Lock()


def _refuse_a_cut_answer(response_dict: dict, **kwargs) -> None:
    """An answer whose body ended before its Content-Length is a lost connection, not an answer.

    botocore reads bodies with urllib3's `enforce_content_length=False`: a connection that ends after the
    headers of a 200 yields an empty body, which parses as a success without `CiphertextBlob`/`Plaintext` (a
    KeyError in the caller, not `kms_unavailable`), and a cut error answer loses its error code. The endpoint
    going away mid-answer (a restart, a dropped connection, the local KMS's `stop()`) does exactly this."""
    expected = response_dict.get("headers", {}).get("content-length")
    body = response_dict.get("body")
    if expected is not None and isinstance(body, bytes) and len(body) != int(expected):
        raise botocore.exceptions.ResponseStreamingError(
            error=f"the answer ended after {len(body)} of its {int(expected)} bytes"
        )


def endpoint_for(aws_region: str) -> str | None:
    return settings.KMS_ENDPOINT_URLS.get(aws_region) or settings.KMS_ENDPOINT_URL


def client_for(aws_region: str):
    endpoint = endpoint_for(aws_region)
    key = (aws_region, endpoint)
    with _clients_lock:
        if key not in _clients:
            config = botocore.config.Config(
                connect_timeout=settings.KMS_CONNECT_TIMEOUT,
                read_timeout=settings.KMS_READ_TIMEOUT,
                retries={"total_max_attempts": settings.KMS_MAX_ATTEMPTS, "mode": "standard"},
                max_pool_connections=_pool_size(),
                user_agent_extra="konnect-admin",
            )
            credentials = {}
            if endpoint and not boto3.session.Session().get_credentials():
                credentials = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}  # noqa: S106
            session = boto3.session.Session()
            client = session.client("kms", region_name=aws_region, endpoint_url=endpoint, config=config, **credentials)
            client.meta.events.register("before-parse.kms", _refuse_a_cut_answer)
            _clients[key] = client
        return _clients[key]


def _pool_size() -> int:
    """Connections kept per client: enough for the most calls a process puts in flight (a health sweep, a
    re-wrap), so none is opened and thrown away per call (botocore keeps 10 by default)."""
    in_flight = (getattr(settings, name, 1) for name in ("KEY_HEALTH_SWEEP_CONCURRENCY", "KEY_REWRAP_CONCURRENCY"))
    return max(10, *(int(value) for value in in_flight))


def reset_clients() -> None:
    with _clients_lock:
        _clients.clear()


def _to_error(exc: Exception, key_arn: str) -> KmsError:
    if isinstance(exc, botocore.exceptions.ClientError):
        aws_code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = _ERROR_CODES.get(aws_code, ErrorCode.KMS_UNAVAILABLE if status >= 500 else None)
        if code is None:
            code = ErrorCode.KEY_ACCESS_DENIED
        message = exc.response.get("Error", {}).get("Message", "")
        return KmsError(code, aws_code=aws_code, key_arn=key_arn, detail=f"{aws_code}: {message}"[:300])
    return KmsError(ErrorCode.KMS_UNAVAILABLE, aws_code=type(exc).__name__, key_arn=key_arn, detail=type(exc).__name__)


def _call(operation: str, key_arn: str, *, organization_id=None, context: dict | None = None,
          key_param: str = "KeyId", context_param: str | None = "EncryptionContext", failover: bool = True,
          **params):
    """Call `operation` with `key_arn`; for a multi-region key, fail over to its replicas when KMS is unreachable."""
    candidates = failover_arns(key_arn) if failover else [key_arn]
    last_error: KmsError | None = None
    for arn in candidates:
        region = aws_region_of(arn)
        started = time.perf_counter()
        outcome, request_id = "ok", ""
        try:
            call_params = {key_param: arn, **params}
            if context is not None and context_param:
                call_params[context_param] = context
            response = getattr(client_for(region), operation)(**call_params)
            request_id = response.get("ResponseMetadata", {}).get("RequestId", "")
            return response
        except (botocore.exceptions.ClientError, *_UNREACHABLE) as exc:
            last_error = _to_error(exc, key_arn)
            outcome = last_error.code.value
            if isinstance(exc, botocore.exceptions.ClientError):
                request_id = exc.response.get("ResponseMetadata", {}).get("RequestId", "")
            if last_error.code is not ErrorCode.KMS_UNAVAILABLE:
                break
        except _NO_CREDENTIALS:
            outcome = "not_configured"
            raise KmsNotConfigured(NO_CREDENTIALS_MESSAGE) from None
        finally:
            call_log.record(
                organization_id=organization_id,
                key_arn=key_arn,
                aws_region=region,
                operation=_OPERATION_NAMES.get(operation, operation),
                encryption_context=context or {},
                outcome=outcome,
                latency_ms=round((time.perf_counter() - started) * 1000, 3),
                request_id=request_id,
            )
    raise last_error


_OPERATION_NAMES = {
    "generate_data_key": "GenerateDataKey",
    "decrypt": "Decrypt",
    "encrypt": "Encrypt",
    "re_encrypt": "ReEncrypt",
    "describe_key": "DescribeKey",
    "get_key_rotation_status": "GetKeyRotationStatus",
}


def generate_data_key(*, key_arn: str, context: dict[str, str], organization_id=None) -> tuple[bytes, bytes]:
    """A fresh AES-256 data key: (plaintext, wrapped)."""
    response = _call("generate_data_key", key_arn, organization_id=organization_id, context=context, KeySpec="AES_256")
    return response["Plaintext"], response["CiphertextBlob"]


def decrypt(*, key_arn: str, wrapped: bytes, context: dict[str, str], organization_id=None) -> bytes:
    response = _call("decrypt", key_arn, organization_id=organization_id, context=context, CiphertextBlob=bytes(wrapped))
    return response["Plaintext"]


def encrypt(*, key_arn: str, plaintext: bytes, context: dict[str, str], organization_id=None) -> bytes:
    response = _call("encrypt", key_arn, organization_id=organization_id, context=context, Plaintext=plaintext)
    return response["CiphertextBlob"]


def re_encrypt(*, source_arn: str, destination_arn: str, wrapped: bytes, context: dict[str, str],
               organization_id=None) -> bytes:
    """Re-wrap under another key inside KMS: the data key's plaintext never leaves KMS."""
    response = _call(
        "re_encrypt",
        destination_arn,
        organization_id=organization_id,
        context=context,
        context_param=None,
        key_param="DestinationKeyId",
        failover=False,
        CiphertextBlob=bytes(wrapped),
        SourceKeyId=source_arn,
        SourceEncryptionContext=context,
        DestinationEncryptionContext=context,
    )
    return response["CiphertextBlob"]


def describe_key(*, key_arn: str, organization_id=None) -> dict:
    return _call("describe_key", key_arn, organization_id=organization_id)["KeyMetadata"]


def get_key_rotation_status(*, key_arn: str, organization_id=None) -> bool:
    return bool(_call("get_key_rotation_status", key_arn, organization_id=organization_id)["KeyRotationEnabled"])
