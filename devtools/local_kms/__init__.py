"""Local AWS KMS for dev, demo and tests: moto's server on loopback + an AWS-fidelity layer.

Never imported by application code paths: the app reaches it over HTTP through
``encryption_keys.providers.aws.kms`` with ``KMS_ENDPOINT_URL``, exactly as it reaches AWS.
"""

from .admin import (
    DEFAULT_ACCOUNT_ID,
    cancel_key_deletion,
    create_key,
    delete_key_material_or_key,
    describe_key,
    disable_key,
    enable_key,
    get_key,
    parse_key_arn,
    put_key_policy,
    replicate_key,
    schedule_key_deletion,
    set_key_rotation,
    set_key_state,
)
from .server import LocalKmsServer, create_platform_keys, main, parse_platform_keys

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "LocalKmsServer",
    "cancel_key_deletion",
    "create_key",
    "create_platform_keys",
    "delete_key_material_or_key",
    "describe_key",
    "disable_key",
    "enable_key",
    "get_key",
    "main",
    "parse_key_arn",
    "parse_platform_keys",
    "put_key_policy",
    "replicate_key",
    "schedule_key_deletion",
    "set_key_rotation",
    "set_key_state",
]
