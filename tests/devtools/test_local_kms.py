"""The local KMS server speaks AWS KMS over HTTP the way AWS does where Konnect Admin relies on it.

Every test talks to a real ``LocalKmsServer`` on loopback through boto3 with ``endpoint_url`` —
never in-process ``mock_aws`` — and asserts the exact botocore error code. Out-of-band changes (the
customer disabling or deleting their key) go through ``devtools.local_kms`` admin helpers.
No Django, no database.
"""

from __future__ import annotations

import base64
import http.client
import inspect
import io
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import boto3
import moto
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from moto.kms import utils as moto_kms_utils

import devtools.local_kms as local_kms_package
from devtools.local_kms import admin, fidelity
from devtools.local_kms import server as server_module
from devtools.local_kms.server import LocalKmsServer

REGION = "us-west-2"
REPLICA_REGION = "us-east-2"
ACCOUNT = admin.DEFAULT_ACCOUNT_ID
PLATFORM_ROLE = f"arn:aws:iam::{ACCOUNT}:role/konnect-platform"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def context(org: str = "org-1", datakey: str = "dek-1") -> dict[str, str]:
    return {
        "konnect:org": org,
        "konnect:region": "us",
        "konnect:purpose": "debugger.payload",
        "konnect:datakey": datakey,
    }


CTX = context()


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


def make_client(endpoint_url: str, region: str = REGION):
    return boto3.client(
        "kms",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=20),
    )


@pytest.fixture(scope="module")
def local_server():
    with LocalKmsServer() as server:
        yield server


@pytest.fixture(scope="module")
def client_for(local_server):
    def _client(region: str = REGION):
        return make_client(local_server.endpoint_url, region)

    return _client


@pytest.fixture
def kms(client_for):
    return client_for(REGION)


@dataclass
class Victim:
    """A key about to be broken, with a ciphertext under it and a healthy second key."""

    arn: str
    ciphertext: bytes
    other_arn: str
    other_ciphertext: bytes


@pytest.fixture
def victim(kms):
    arn = admin.create_key(region=REGION, description="victim")
    other_arn = admin.create_key(region=REGION, description="healthy")
    return Victim(
        arn=arn,
        ciphertext=kms.encrypt(KeyId=arn, Plaintext=b"secret", EncryptionContext=CTX)["CiphertextBlob"],
        other_arn=other_arn,
        other_ciphertext=kms.encrypt(KeyId=other_arn, Plaintext=b"secret", EncryptionContext=CTX)[
            "CiphertextBlob"
        ],
    )


def kms_error(call, code: str) -> dict:
    """Run ``call``; assert it failed as an AWS JSON error (HTTP 400) with exactly ``code``."""
    with pytest.raises(ClientError) as excinfo:
        call()
    response = excinfo.value.response
    assert response["Error"]["Code"] == code, response["Error"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return response["Error"]


# The six cryptographic calls Konnect makes, aimed at ``victim.arn`` (as source or destination).
OPERATIONS = {
    "Encrypt": lambda kms, v: kms.encrypt(KeyId=v.arn, Plaintext=b"x", EncryptionContext=CTX),
    "Decrypt": lambda kms, v: kms.decrypt(CiphertextBlob=v.ciphertext, KeyId=v.arn, EncryptionContext=CTX),
    "GenerateDataKey": lambda kms, v: kms.generate_data_key(
        KeyId=v.arn, KeySpec="AES_256", EncryptionContext=CTX
    ),
    "GenerateDataKeyWithoutPlaintext": lambda kms, v: kms.generate_data_key_without_plaintext(
        KeyId=v.arn, KeySpec="AES_256", EncryptionContext=CTX
    ),
    "ReEncrypt(source)": lambda kms, v: kms.re_encrypt(
        CiphertextBlob=v.ciphertext,
        SourceEncryptionContext=CTX,
        DestinationKeyId=v.other_arn,
        DestinationEncryptionContext=CTX,
    ),
    "ReEncrypt(destination)": lambda kms, v: kms.re_encrypt(
        CiphertextBlob=v.other_ciphertext,
        SourceEncryptionContext=CTX,
        DestinationKeyId=v.arn,
        DestinationEncryptionContext=CTX,
    ),
}


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------


def test_generate_data_key_then_decrypt_with_the_same_encryption_context(kms):
    arn = admin.create_key(region=REGION)
    data_key = kms.generate_data_key(KeyId=arn, KeySpec="AES_256", EncryptionContext=CTX)
    assert len(data_key["Plaintext"]) == 32
    assert data_key["KeyId"] == arn

    decrypted = kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"], KeyId=arn, EncryptionContext=CTX)

    assert decrypted["Plaintext"] == data_key["Plaintext"]
    assert decrypted["KeyId"] == arn


def test_decrypt_with_a_different_encryption_context_is_invalid_ciphertext(kms):
    arn = admin.create_key(region=REGION)
    wrapped = kms.generate_data_key_without_plaintext(KeyId=arn, KeySpec="AES_256", EncryptionContext=CTX)
    assert "Plaintext" not in wrapped

    kms_error(
        lambda: kms.decrypt(
            CiphertextBlob=wrapped["CiphertextBlob"], KeyId=arn, EncryptionContext=context(org="org-2")
        ),
        "InvalidCiphertextException",
    )
    kms_error(
        lambda: kms.decrypt(CiphertextBlob=wrapped["CiphertextBlob"], KeyId=arn), "InvalidCiphertextException"
    )
    kms_error(lambda: kms.decrypt(CiphertextBlob=b"not a ciphertext"), "InvalidCiphertextException")


def test_re_encrypt_from_key_a_to_key_b_then_decrypt_with_b(kms):
    key_a = admin.create_key(region=REGION, description="old CMEK")
    key_b = admin.create_key(region=REGION, description="new CMEK")
    data_key = kms.generate_data_key(KeyId=key_a, KeySpec="AES_256", EncryptionContext=CTX)

    rewrapped = kms.re_encrypt(
        CiphertextBlob=data_key["CiphertextBlob"],
        SourceKeyId=key_a,
        SourceEncryptionContext=CTX,
        DestinationKeyId=key_b,
        DestinationEncryptionContext=CTX,
    )

    assert rewrapped["SourceKeyId"] == key_a
    assert rewrapped["KeyId"] == key_b
    decrypted = kms.decrypt(CiphertextBlob=rewrapped["CiphertextBlob"], KeyId=key_b, EncryptionContext=CTX)
    assert decrypted["Plaintext"] == data_key["Plaintext"]
    kms_error(
        lambda: kms.decrypt(CiphertextBlob=rewrapped["CiphertextBlob"], KeyId=key_a, EncryptionContext=CTX),
        "IncorrectKeyException",
    )


# --------------------------------------------------------------------------------------------
# 1. Key state
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS)
def test_disabled_key_refuses_cryptographic_operations(kms, victim, operation):
    admin.disable_key(victim.arn)

    error = kms_error(lambda: OPERATIONS[operation](kms, victim), "DisabledException")

    assert victim.arn in error["Message"]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_key_pending_deletion_refuses_cryptographic_operations(kms, victim, operation):
    admin.schedule_key_deletion(victim.arn, days=7)

    error = kms_error(lambda: OPERATIONS[operation](kms, victim), "KMSInvalidStateException")

    assert "pending deletion" in error["Message"]


def test_key_state_changes_over_http_accept_arns_and_follow_aws_transitions(kms, victim):
    kms.enable_key_rotation(KeyId=victim.arn)

    kms.disable_key(KeyId=victim.arn)  # moto alone: HTTP 500 for an ARN
    assert kms.describe_key(KeyId=victim.arn)["KeyMetadata"]["KeyState"] == "Disabled"
    kms_error(lambda: OPERATIONS["Encrypt"](kms, victim), "DisabledException")
    kms.enable_key(KeyId=victim.arn)

    kms_error(
        lambda: kms.schedule_key_deletion(KeyId=victim.arn, PendingWindowInDays=3), "ValidationException"
    )
    kms.schedule_key_deletion(KeyId=victim.arn, PendingWindowInDays=7)
    metadata = kms.describe_key(KeyId=victim.arn)["KeyMetadata"]
    assert metadata["KeyState"] == "PendingDeletion"
    assert "DeletionDate" in metadata
    assert kms.get_key_rotation_status(KeyId=victim.arn)["KeyRotationEnabled"] is False
    kms_error(lambda: kms.enable_key(KeyId=victim.arn), "KMSInvalidStateException")

    kms.cancel_key_deletion(KeyId=victim.arn)
    assert kms.describe_key(KeyId=victim.arn)["KeyMetadata"]["KeyState"] == "Disabled"
    kms_error(lambda: kms.cancel_key_deletion(KeyId=victim.arn), "KMSInvalidStateException")
    kms.enable_key(KeyId=victim.arn)
    assert kms.get_key_rotation_status(KeyId=victim.arn)["KeyRotationEnabled"] is True
    assert OPERATIONS["Decrypt"](kms, victim)["Plaintext"] == b"secret"


def test_admin_helpers_change_state_out_of_band(kms, victim):
    deletion_date = admin.schedule_key_deletion(victim.arn, days=30)
    assert admin.describe_key(victim.arn)["KeyState"] == "PendingDeletion"
    assert kms.describe_key(KeyId=victim.arn)["KeyMetadata"]["DeletionDate"].timestamp() == pytest.approx(
        deletion_date.timestamp(), abs=1
    )

    admin.cancel_key_deletion(victim.arn)
    assert kms.describe_key(KeyId=victim.arn)["KeyMetadata"]["KeyState"] == "Disabled"
    admin.set_key_state(victim.arn, "Unavailable")
    kms_error(lambda: OPERATIONS["Decrypt"](kms, victim), "KMSInvalidStateException")
    admin.enable_key(victim.arn)
    assert OPERATIONS["Decrypt"](kms, victim)["Plaintext"] == b"secret"

    with pytest.raises(ValueError, match="7–30 days"):
        admin.schedule_key_deletion(victim.arn, days=1)
    with pytest.raises(ValueError, match="unknown key state"):
        admin.set_key_state(victim.arn, "Broken")
    with pytest.raises(KeyError, match="no key"):
        admin.disable_key(victim.arn.replace(victim.arn[-12:], "000000000000"))


# --------------------------------------------------------------------------------------------
# 2. Incorrect key
# --------------------------------------------------------------------------------------------


def test_decrypt_with_an_explicit_key_id_other_than_the_encrypting_key_is_incorrect_key(kms, victim):
    kms_error(
        lambda: kms.decrypt(CiphertextBlob=victim.ciphertext, KeyId=victim.other_arn, EncryptionContext=CTX),
        "IncorrectKeyException",
    )
    kms_error(
        lambda: kms.re_encrypt(
            CiphertextBlob=victim.ciphertext,
            SourceKeyId=victim.other_arn,
            SourceEncryptionContext=CTX,
            DestinationKeyId=victim.other_arn,
            DestinationEncryptionContext=CTX,
        ),
        "IncorrectKeyException",
    )


# --------------------------------------------------------------------------------------------
# 3. Key usage
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_spec", "key_usage"),
    [
        ("RSA_2048", "ENCRYPT_DECRYPT"),
        ("RSA_2048", "SIGN_VERIFY"),
        ("ECC_NIST_P256", "SIGN_VERIFY"),
        ("HMAC_256", "GENERATE_VERIFY_MAC"),
    ],
)
@pytest.mark.parametrize("operation", ["Encrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext"])
def test_non_symmetric_encryption_key_is_invalid_key_usage(kms, key_spec, key_usage, operation):
    arn = kms.create_key(KeySpec=key_spec, KeyUsage=key_usage)["KeyMetadata"]["Arn"]
    calls = {
        "Encrypt": lambda: kms.encrypt(KeyId=arn, Plaintext=b"x", EncryptionContext=CTX),
        "GenerateDataKey": lambda: kms.generate_data_key(KeyId=arn, KeySpec="AES_256", EncryptionContext=CTX),
        "GenerateDataKeyWithoutPlaintext": lambda: kms.generate_data_key_without_plaintext(
            KeyId=arn, KeySpec="AES_256", EncryptionContext=CTX
        ),
    }

    kms_error(calls[operation], "InvalidKeyUsageException")


# --------------------------------------------------------------------------------------------
# 4. Multi-Region keys
# --------------------------------------------------------------------------------------------


@pytest.fixture
def mrk(client_for):
    """A multi-Region primary in us-west-2 replicated (over HTTP, by ARN) to us-east-2."""
    west = client_for(REGION)
    primary = west.create_key(MultiRegion=True, Description="customer CMEK")["KeyMetadata"]
    replica = west.replicate_key(KeyId=primary["Arn"], ReplicaRegion=REPLICA_REGION)["ReplicaKeyMetadata"]
    return primary["Arn"], replica["Arn"]


def test_multi_region_primary_and_replica_decrypt_each_other(client_for, mrk):
    primary_arn, replica_arn = mrk
    west, east = client_for(REGION), client_for(REPLICA_REGION)
    assert primary_arn.split("/")[-1].startswith("mrk-")
    assert replica_arn == primary_arn.replace(REGION, REPLICA_REGION)

    made_in_west = west.generate_data_key(KeyId=primary_arn, KeySpec="AES_256", EncryptionContext=CTX)
    in_east = east.decrypt(
        CiphertextBlob=made_in_west["CiphertextBlob"], KeyId=replica_arn, EncryptionContext=CTX
    )
    assert in_east["Plaintext"] == made_in_west["Plaintext"]
    assert in_east["KeyId"] == replica_arn

    made_in_east = east.encrypt(KeyId=replica_arn, Plaintext=b"payload", EncryptionContext=CTX)
    in_west = west.decrypt(CiphertextBlob=made_in_east["CiphertextBlob"], EncryptionContext=CTX)
    assert in_west["Plaintext"] == b"payload"
    assert in_west["KeyId"] == primary_arn

    same_region = west.decrypt(
        CiphertextBlob=made_in_west["CiphertextBlob"], KeyId=primary_arn, EncryptionContext=CTX
    )
    assert same_region["Plaintext"] == made_in_west["Plaintext"]


def test_multi_region_key_arn_only_resolves_in_its_own_region(client_for, mrk):
    primary_arn, _replica_arn = mrk
    west, east = client_for(REGION), client_for(REPLICA_REGION)
    ciphertext = west.encrypt(KeyId=primary_arn, Plaintext=b"x", EncryptionContext=CTX)["CiphertextBlob"]

    kms_error(
        lambda: east.decrypt(CiphertextBlob=ciphertext, KeyId=primary_arn, EncryptionContext=CTX),
        "NotFoundException",
    )


def test_replica_has_its_own_key_state(client_for, mrk):
    primary_arn, replica_arn = mrk
    west, east = client_for(REGION), client_for(REPLICA_REGION)
    ciphertext = west.encrypt(KeyId=primary_arn, Plaintext=b"x", EncryptionContext=CTX)["CiphertextBlob"]

    admin.disable_key(replica_arn)

    kms_error(
        lambda: east.decrypt(CiphertextBlob=ciphertext, KeyId=replica_arn, EncryptionContext=CTX),
        "DisabledException",
    )
    assert (
        west.decrypt(CiphertextBlob=ciphertext, KeyId=primary_arn, EncryptionContext=CTX)["Plaintext"] == b"x"
    )


def test_describe_key_reports_multi_region_configuration(client_for, mrk):
    primary_arn, replica_arn = mrk
    third_arn = admin.replicate_key(primary_arn, to_region="eu-central-1")
    west, east = client_for(REGION), client_for(REPLICA_REGION)

    replica = east.describe_key(KeyId=replica_arn)["KeyMetadata"]
    primary = west.describe_key(KeyId=primary_arn)["KeyMetadata"]

    expected_replicas = [
        {"Arn": replica_arn, "Region": REPLICA_REGION},
        {"Arn": third_arn, "Region": "eu-central-1"},
    ]
    assert primary["MultiRegion"] is True
    assert primary["MultiRegionConfiguration"] == {
        "MultiRegionKeyType": "PRIMARY",
        "PrimaryKey": {"Arn": primary_arn, "Region": REGION},
        "ReplicaKeys": expected_replicas,
    }
    assert replica["MultiRegion"] is True
    assert replica["MultiRegionConfiguration"] == {
        "MultiRegionKeyType": "REPLICA",
        "PrimaryKey": {"Arn": primary_arn, "Region": REGION},
        "ReplicaKeys": expected_replicas,
    }
    assert replica["KeyState"] == "Enabled"
    kms_error(
        lambda: west.replicate_key(KeyId=primary_arn, ReplicaRegion=REPLICA_REGION), "AlreadyExistsException"
    )
    single = west.create_key()["KeyMetadata"]["Arn"]
    kms_error(
        lambda: west.replicate_key(KeyId=single, ReplicaRegion=REPLICA_REGION),
        "UnsupportedOperationException",
    )


# --------------------------------------------------------------------------------------------
# 5. Key policy
# --------------------------------------------------------------------------------------------


def key_policy(*deny_statements: dict) -> dict:
    """The key policy a customer would write: root admin + the platform role's grant + Deny statements."""
    return {
        "Version": "2012-10-17",
        "Id": "konnect-cmek",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "Allow Konnect",
                "Effect": "Allow",
                "Principal": {"AWS": PLATFORM_ROLE},
                "Action": [
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:GetKeyRotationStatus",
                    "kms:GenerateDataKey*",
                    "kms:DescribeKey",
                ],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:EncryptionContext:konnect:org": "org-y"}},
            },
            *deny_statements,
        ],
    }


def test_key_policy_deny_on_encryption_context_denies_org_x_and_allows_org_y(kms):
    arn = admin.create_key(region=REGION)
    org_x, org_y = context(org="org-x"), context(org="org-y")
    wrapped_for_x = kms.generate_data_key(KeyId=arn, KeySpec="AES_256", EncryptionContext=org_x)
    deny_org_x = {
        "Sid": "No other tenant through the platform role",
        "Effect": "Deny",
        "Principal": {"AWS": PLATFORM_ROLE},
        "Action": ["kms:GenerateDataKey*", "kms:Decrypt", "kms:ReEncrypt*"],
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:EncryptionContext:konnect:org": ["org-x", "org-z"]}},
    }
    kms.put_key_policy(KeyId=arn, PolicyName="default", Policy=json.dumps(key_policy(deny_org_x)))

    error = kms_error(
        lambda: kms.generate_data_key(KeyId=arn, KeySpec="AES_256", EncryptionContext=org_x),
        "AccessDeniedException",
    )
    assert "kms:GenerateDataKey" in error["Message"]
    kms_error(
        lambda: kms.generate_data_key_without_plaintext(
            KeyId=arn, KeySpec="AES_256", EncryptionContext=org_x
        ),
        "AccessDeniedException",
    )
    kms_error(
        lambda: kms.decrypt(
            CiphertextBlob=wrapped_for_x["CiphertextBlob"], KeyId=arn, EncryptionContext=org_x
        ),
        "AccessDeniedException",
    )

    wrapped_for_y = kms.generate_data_key(KeyId=arn, KeySpec="AES_256", EncryptionContext=org_y)
    decrypted = kms.decrypt(
        CiphertextBlob=wrapped_for_y["CiphertextBlob"], KeyId=arn, EncryptionContext=org_y
    )
    assert decrypted["Plaintext"] == wrapped_for_y["Plaintext"]
    assert (
        kms.encrypt(KeyId=arn, Plaintext=b"x", EncryptionContext=org_x)["KeyId"] == arn
    )  # Encrypt not denied


def test_key_policy_confused_deputy_guard_with_string_not_equals(kms):
    only_org_y = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "kms:*",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"kms:EncryptionContext:konnect:org": "org-y"}},
    }
    arn = kms.create_key(Policy=json.dumps(key_policy(only_org_y)))["KeyMetadata"]["Arn"]

    kms_error(
        lambda: kms.encrypt(KeyId=arn, Plaintext=b"x", EncryptionContext=context(org="org-x")),
        "AccessDeniedException",
    )
    kms_error(lambda: kms.encrypt(KeyId=arn, Plaintext=b"x"), "AccessDeniedException")  # no context at all
    kms_error(lambda: kms.describe_key(KeyId=arn), "AccessDeniedException")  # kms:* matches DescribeKey
    ciphertext = kms.encrypt(KeyId=arn, Plaintext=b"x", EncryptionContext=context(org="org-y"))[
        "CiphertextBlob"
    ]
    assert kms.decrypt(CiphertextBlob=ciphertext, EncryptionContext=context(org="org-y"))["Plaintext"] == b"x"


@pytest.mark.parametrize(
    ("denied_action", "operation", "denied"),
    [
        ("kms:Decrypt", "Decrypt", True),
        ("KMS:decrypt", "Decrypt", True),
        ("kms:Decrypt", "Encrypt", False),
        ("kms:GenerateDataKey*", "GenerateDataKeyWithoutPlaintext", True),
        ("kms:GenerateDataKey", "GenerateDataKeyWithoutPlaintext", False),
        ("kms:ReEncrypt*", "ReEncrypt(source)", True),
        ("kms:ReEncryptTo", "ReEncrypt(source)", False),
        ("kms:ReEncryptTo", "ReEncrypt(destination)", True),
        ("kms:*", "Encrypt", True),
        (["kms:Sign", "kms:Encrypt"], "Encrypt", True),
    ],
)
def test_key_policy_deny_actions_match_with_wildcards(kms, victim, denied_action, operation, denied):
    deny = {"Effect": "Deny", "Principal": "*", "Action": denied_action, "Resource": "*"}
    admin.put_key_policy(victim.arn, key_policy(deny))

    if denied:
        kms_error(lambda: OPERATIONS[operation](kms, victim), "AccessDeniedException")
    else:
        OPERATIONS[operation](kms, victim)


def test_key_policy_deny_describe_and_rotation_status_and_ignored_statements(kms):
    ignored = [
        {
            "Effect": "Deny",
            "Principal": {"Service": "logs.amazonaws.com"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "kms:Sign",
            "Resource": "*",
        },  # Allow lists not enforced
        {"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "arn:aws:kms:*:*:key/other"},
    ]
    arn = admin.create_key(region=REGION, policy=key_policy(*ignored))
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["Arn"] == arn
    assert kms.encrypt(KeyId=arn, Plaintext=b"x")["KeyId"] == arn

    admin.put_key_policy(
        arn,
        key_policy(
            {"Effect": "Deny", "Principal": "*", "Action": ["kms:Describe*", "kms:GetKey*"], "Resource": "*"}
        ),
    )
    kms_error(lambda: kms.describe_key(KeyId=arn), "AccessDeniedException")
    kms_error(lambda: kms.get_key_rotation_status(KeyId=arn), "AccessDeniedException")

    kms_error(
        lambda: kms.put_key_policy(KeyId=arn, PolicyName="default", Policy="{not json"),
        "MalformedPolicyDocumentException",
    )


# --------------------------------------------------------------------------------------------
# 5b. Key policy: Allow statements for a server whose caller is the platform role
# --------------------------------------------------------------------------------------------

OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/someone-else"
USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"]


@pytest.fixture(scope="module")
def platform_server():
    with LocalKmsServer(caller_principal=PLATFORM_ROLE) as server:
        yield server


@pytest.fixture
def as_platform(platform_server):
    return make_client(platform_server.endpoint_url)


def platform_policy(*extra: dict, org: str = "org-y", principal: str = PLATFORM_ROLE) -> dict:
    """Root administration + the two statements the Link key page hands out for ``org``, then ``extra``."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "Use", "Effect": "Allow", "Principal": {"AWS": principal}, "Action": USE_ACTIONS,
             "Resource": "*", "Condition": {"StringEquals": {"kms:EncryptionContext:konnect:org": org}}},
            {"Sid": "Read", "Effect": "Allow", "Principal": {"AWS": principal},
             "Action": ["kms:DescribeKey", "kms:GetKeyRotationStatus"], "Resource": "*"},
            *extra,
        ],
    }


def not_allowed(call) -> str:
    message = kms_error(call, "AccessDeniedException")["Message"]
    assert "no resource-based policy allows" in message and PLATFORM_ROLE in message
    return message


def test_allow_statement_lets_the_named_caller_use_the_key_for_its_context(as_platform):
    arn = admin.create_key(region=REGION, policy=platform_policy())
    org_y = context(org="org-y")
    data_key = as_platform.generate_data_key(KeyId=arn, KeySpec="AES_256", EncryptionContext=org_y)
    assert as_platform.decrypt(CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext=org_y)["Plaintext"] == \
        data_key["Plaintext"]
    assert as_platform.encrypt(KeyId=arn, Plaintext=b"x", EncryptionContext=org_y)["KeyId"] == arn
    assert as_platform.describe_key(KeyId=arn)["KeyMetadata"]["Arn"] == arn  # no context: the Read statement
    assert as_platform.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"] is True


def test_allow_with_another_encryption_context_is_default_deny(as_platform):
    """The confused deputy: the platform asked to use org-y's key for org-x."""
    arn = admin.create_key(region=REGION, policy=platform_policy())
    org_x = context(org="org-x")
    message = not_allowed(lambda: as_platform.generate_data_key(KeyId=arn, KeySpec="AES_256", EncryptionContext=org_x))
    assert "kms:GenerateDataKey" in message and arn in message
    not_allowed(lambda: as_platform.encrypt(KeyId=arn, Plaintext=b"x", EncryptionContext=org_x))
    not_allowed(lambda: as_platform.encrypt(KeyId=arn, Plaintext=b"x"))  # no context at all
    # A ciphertext made for org-x before the policy pinned the key to org-y cannot be opened for org-x either.
    admin.put_key_policy(arn, platform_policy(org="org-x"))
    wrapped = as_platform.generate_data_key(KeyId=arn, KeySpec="AES_256", EncryptionContext=org_x)["CiphertextBlob"]
    admin.put_key_policy(arn, platform_policy())
    not_allowed(lambda: as_platform.decrypt(CiphertextBlob=wrapped, EncryptionContext=org_x))


def test_allow_for_other_actions_only_is_default_deny(as_platform):
    decrypt_only = platform_policy()
    decrypt_only["Statement"][1]["Action"] = "kms:Decrypt"
    arn = admin.create_key(region=REGION, policy=decrypt_only)
    not_allowed(lambda: as_platform.generate_data_key(KeyId=arn, KeySpec="AES_256", EncryptionContext=context("org-y")))
    not_allowed(lambda: as_platform.encrypt(KeyId=arn, Plaintext=b"x", EncryptionContext=context("org-y")))


def test_a_use_statement_conditioned_on_the_context_never_grants_describe_key(as_platform):
    """DescribeKey and GetKeyRotationStatus carry no encryption context (as in AWS)."""
    conditioned = platform_policy()
    conditioned["Statement"][1]["Action"] = [*USE_ACTIONS, "kms:DescribeKey", "kms:GetKeyRotationStatus"]
    del conditioned["Statement"][2]
    arn = admin.create_key(region=REGION, policy=conditioned)
    not_allowed(lambda: as_platform.describe_key(KeyId=arn))
    not_allowed(lambda: as_platform.get_key_rotation_status(KeyId=arn))
    assert as_platform.encrypt(KeyId=arn, Plaintext=b"x", EncryptionContext=context("org-y"))["KeyId"] == arn


def test_statements_for_another_principal_or_the_account_root_do_not_grant_the_caller(as_platform):
    """The root statement delegates to IAM policies, which the caller has none of; another role's grant is its own."""
    arn = admin.create_key(region=REGION, policy=platform_policy(principal=OTHER_ROLE))
    not_allowed(lambda: as_platform.describe_key(KeyId=arn))
    not_allowed(lambda: as_platform.encrypt(KeyId=arn, Plaintext=b"x", EncryptionContext=context("org-y")))
    everyone = platform_policy({"Effect": "Allow", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*"},
                               principal=OTHER_ROLE)
    admin.put_key_policy(arn, everyone)
    assert as_platform.encrypt(KeyId=arn, Plaintext=b"x", EncryptionContext=context("org-x"))["KeyId"] == arn


def test_deny_wins_over_a_matching_allow(as_platform):
    deny = {"Sid": "NoDecryptForY", "Effect": "Deny", "Principal": {"AWS": PLATFORM_ROLE}, "Action": "kms:Decrypt",
            "Resource": "*", "Condition": {"StringEquals": {"kms:EncryptionContext:konnect:org": "org-y"}}}
    arn = admin.create_key(region=REGION, policy=platform_policy(deny))
    org_y = context(org="org-y")
    wrapped = as_platform.generate_data_key(KeyId=arn, KeySpec="AES_256", EncryptionContext=org_y)["CiphertextBlob"]
    error = kms_error(lambda: as_platform.decrypt(CiphertextBlob=wrapped, EncryptionContext=org_y),
                      "AccessDeniedException")
    assert "explicit deny" in error["Message"] and "NoDecryptForY" in error["Message"]
    # A Deny naming the caller's account applies to it too; a Deny for another role does not.
    admin.put_key_policy(arn, platform_policy({**deny, "Principal": {"AWS": ACCOUNT}}))
    kms_error(lambda: as_platform.decrypt(CiphertextBlob=wrapped, EncryptionContext=org_y), "AccessDeniedException")
    admin.put_key_policy(arn, platform_policy({**deny, "Principal": {"AWS": OTHER_ROLE}}))
    assert as_platform.decrypt(CiphertextBlob=wrapped, EncryptionContext=org_y)["KeyId"] == arn


def test_re_encrypt_is_authorized_with_each_side_of_its_context(as_platform):
    source = admin.create_key(region=REGION, policy=platform_policy())
    destination = admin.create_key(region=REGION, policy=platform_policy(org="org-z"))
    org_y, org_z = context(org="org-y"), context(org="org-z")
    wrapped = as_platform.generate_data_key(KeyId=source, KeySpec="AES_256", EncryptionContext=org_y)
    moved = as_platform.re_encrypt(CiphertextBlob=wrapped["CiphertextBlob"], SourceEncryptionContext=org_y,
                                   DestinationKeyId=destination, DestinationEncryptionContext=org_z)
    assert as_platform.decrypt(CiphertextBlob=moved["CiphertextBlob"], EncryptionContext=org_z)["Plaintext"] == \
        wrapped["Plaintext"]
    not_allowed(lambda: as_platform.re_encrypt(  # kms:ReEncryptTo under org-y's context: not granted there
        CiphertextBlob=wrapped["CiphertextBlob"], SourceEncryptionContext=org_y, DestinationKeyId=destination,
        DestinationEncryptionContext=org_y))


def test_an_allow_condition_the_evaluator_does_not_understand_does_not_apply(as_platform):
    odd = platform_policy()
    odd["Statement"][2]["Condition"] = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    arn = admin.create_key(region=REGION, policy=odd)
    not_allowed(lambda: as_platform.describe_key(KeyId=arn))


def test_a_policy_naming_no_specific_principal_keeps_allowing_everything(as_platform):
    """moto's default policy (root only), or root plus statements for everyone: nothing to default-deny on."""
    default = admin.create_key(region=REGION)
    assert as_platform.encrypt(KeyId=default, Plaintext=b"x", EncryptionContext=context("org-x"))["KeyId"] == default
    everyone = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": "*", "Action": "kms:Sign", "Resource": "*"}]}
    arn = admin.create_key(region=REGION, policy=everyone)
    assert as_platform.describe_key(KeyId=arn)["KeyMetadata"]["Arn"] == arn
    assert as_platform.encrypt(KeyId=arn, Plaintext=b"x", EncryptionContext=context("org-x"))["KeyId"] == arn


def test_each_server_evaluates_for_its_own_caller(as_platform, kms):
    """The caller is per server (per request), not process-wide: a server told nobody keeps the older model
    (its caller stands for every principal), while the platform server in the same process is refused."""
    arn = admin.create_key(region=REGION, policy=platform_policy(principal=OTHER_ROLE))
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["Arn"] == arn
    not_allowed(lambda: as_platform.describe_key(KeyId=arn))
    assert fidelity.caller_principal() is None  # nothing leaks out of a request into this thread


# --------------------------------------------------------------------------------------------
# 6. DescribeKey / GetKeyRotationStatus
# --------------------------------------------------------------------------------------------


def test_describe_key_reports_key_usage_and_key_spec_and_rotation_status(kms):
    created = kms.create_key(Description="made over HTTP with defaults")["KeyMetadata"]
    metadata = kms.describe_key(KeyId=created["Arn"])["KeyMetadata"]

    assert metadata["KeyUsage"] == "ENCRYPT_DECRYPT"  # moto alone: missing
    assert metadata["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert metadata["MultiRegion"] is False
    assert metadata["KeyState"] == "Enabled"
    assert metadata["Enabled"] is True
    assert kms.get_key_rotation_status(KeyId=created["Arn"])["KeyRotationEnabled"] is False

    arn = admin.create_key(region=REGION, rotation=True)
    assert kms.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"] is True
    hmac = admin.create_key(region=REGION, key_spec="HMAC_256", key_usage="GENERATE_VERIFY_MAC")
    hmac_metadata = kms.describe_key(KeyId=hmac)["KeyMetadata"]
    assert (hmac_metadata["KeySpec"], hmac_metadata["KeyUsage"]) == ("HMAC_256", "GENERATE_VERIFY_MAC")


# --------------------------------------------------------------------------------------------
# 7. Errors over HTTP / NotFound
# --------------------------------------------------------------------------------------------


def test_unknown_or_deleted_key_is_not_found(kms, victim):
    unknown = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{uuid.uuid4()}"
    kms_error(lambda: kms.encrypt(KeyId=unknown, Plaintext=b"x"), "NotFoundException")
    kms_error(lambda: kms.generate_data_key(KeyId=unknown, KeySpec="AES_256"), "NotFoundException")
    kms_error(lambda: kms.describe_key(KeyId=unknown), "NotFoundException")

    admin.delete_key_material_or_key(victim.arn)

    for operation in ("Encrypt", "Decrypt", "GenerateDataKey", "ReEncrypt(destination)"):
        kms_error(lambda op=operation: OPERATIONS[op](kms, victim), "NotFoundException")
    kms_error(lambda: kms.describe_key(KeyId=victim.arn), "NotFoundException")
    # Without a KeyId, AWS cannot name the key: "The ciphertext refers to a customer master key that does not exist…"
    kms_error(
        lambda: kms.decrypt(CiphertextBlob=victim.ciphertext, EncryptionContext=CTX), "AccessDeniedException"
    )


def test_errors_are_kms_json_errors_on_the_wire(local_server, victim):
    admin.disable_key(victim.arn)
    body = json.dumps({"KeyId": victim.arn, "Plaintext": base64.b64encode(b"x").decode()})
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "TrentService.Encrypt",
        "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/kms/aws4_request, "
        "SignedHeaders=host, Signature=0",
    }
    connection = http.client.HTTPConnection("127.0.0.1", local_server.port, timeout=10)
    try:
        connection.request("POST", "/", body=body, headers=headers)
        response = connection.getresponse()
        payload = json.loads(response.read())
    finally:
        connection.close()

    assert response.status == 400
    assert payload["__type"] == "DisabledException"
    assert victim.arn in payload["message"]


# --------------------------------------------------------------------------------------------
# Server lifecycle
# --------------------------------------------------------------------------------------------


def test_stop_then_start_keeps_the_port_and_every_key():
    server = LocalKmsServer().start()
    try:
        endpoint_url = server.endpoint_url
        kms = make_client(endpoint_url)
        arn = admin.create_key(region=REGION)
        ciphertext = kms.encrypt(KeyId=arn, Plaintext=b"survives", EncryptionContext=CTX)["CiphertextBlob"]

        server.stop()
        assert not server.running
        with pytest.raises(EndpointConnectionError):
            kms.decrypt(CiphertextBlob=ciphertext, EncryptionContext=CTX)

        server.start()
        assert server.endpoint_url == endpoint_url
        assert kms.decrypt(CiphertextBlob=ciphertext, EncryptionContext=CTX)["Plaintext"] == b"survives"
    finally:
        server.stop()


def _kms_request(connection: http.client.HTTPConnection, operation: str = "ListKeys", body: bytes = b"{}"):
    connection.request(
        "POST", "/", body=body,
        headers={
            "X-Amz-Target": f"TrentService.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
            "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/kms/aws4_request, "
                             "SignedHeaders=host, Signature=0",
        },
    )
    response = connection.getresponse()
    return response, response.read()


def test_connections_are_kept_alive_like_the_real_endpoint():
    with LocalKmsServer() as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            first, first_body = _kms_request(connection)
            local_port = connection.sock.getsockname()[1]
            second, _ = _kms_request(connection)

            assert (first.status, second.status) == (200, 200)
            assert "Keys" in json.loads(first_body)
            assert first.version == 11 and first.getheader("Connection") is None
            assert first.getheader("Date") and first.getheader("x-amzn-RequestId")
            assert connection.sock.getsockname()[1] == local_port  # the same TCP connection served both
            assert server._httpd.open_connections == 1
        finally:
            connection.close()


def test_stop_ends_open_keep_alive_connections():
    """A stopped local KMS answers nothing, not even on a connection a client already holds."""
    server = LocalKmsServer().start()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        assert _kms_request(connection)[0].status == 200
        server.stop()
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            _kms_request(connection)
        with pytest.raises(ConnectionRefusedError):
            http.client.HTTPConnection("127.0.0.1", server.port, timeout=5).connect()
    finally:
        connection.close()
        server.stop()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Transfer-Encoding": "chunked"}, 411),
        ({"Content-Length": "not-a-number"}, 400),
        ({"Content-Length": str(2 * 1024 * 1024)}, 413),
    ],
)
def test_requests_the_sdks_never_send_are_refused_and_the_connection_closed(local_server, headers, status):
    connection = http.client.HTTPConnection("127.0.0.1", local_server.port, timeout=5)
    try:
        connection.putrequest("POST", "/")
        for name, value in {"X-Amz-Target": "TrentService.ListKeys", **headers}.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        response.read()
        assert response.status == status
        assert response.getheader("Connection") == "close"
    finally:
        connection.close()


def test_an_application_error_is_a_500_without_details(local_server, monkeypatch):
    def broken(environ, start_response):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(local_server._httpd, "app", broken)
    connection = http.client.HTTPConnection("127.0.0.1", local_server.port, timeout=5)
    try:
        response, body = _kms_request(connection)
        assert response.status == 500
        assert b"secret detail" not in body
        monkeypatch.undo()
        assert _kms_request(connection)[0].status == 200  # the connection, and the server, carry on
    finally:
        connection.close()


def test_two_servers_in_one_process_serve_the_same_keys(local_server):
    with LocalKmsServer() as second:
        assert second.port != local_server.port
        region_a = make_client(local_server.endpoint_url)
        region_b = make_client(second.endpoint_url)
        arn = region_a.create_key(Description="shared")["KeyMetadata"]["Arn"]
        ciphertext = region_a.encrypt(KeyId=arn, Plaintext=b"shared", EncryptionContext=CTX)["CiphertextBlob"]

        assert (
            region_b.decrypt(CiphertextBlob=ciphertext, KeyId=arn, EncryptionContext=CTX)["Plaintext"]
            == b"shared"
        )
        admin.disable_key(arn)
        kms_error(lambda: region_b.encrypt(KeyId=arn, Plaintext=b"x"), "DisabledException")


def test_a_busy_port_is_reported_instead_of_hanging(local_server):
    with pytest.raises(RuntimeError, match="could not listen"):
        LocalKmsServer(port=local_server.port).start()


def test_latency_delays_every_kms_answer_without_serialising_them():
    arn = admin.create_key(region=REGION, description="slow")
    with LocalKmsServer(latency=0.3) as slow:
        client = make_client(slow.endpoint_url)
        client.describe_key(KeyId=arn)  # the connection is open
        started = time.monotonic()
        client.describe_key(KeyId=arn)
        one = time.monotonic() - started
        clients = [make_client(slow.endpoint_url) for _ in range(4)]  # made here: creating clients is not thread-safe
        with ThreadPoolExecutor(4) as pool:
            started = time.monotonic()
            list(pool.map(lambda each: each.describe_key(KeyId=arn), clients))
            four = time.monotonic() - started
    assert one >= 0.3
    assert four < 4 * 0.3  # waited side by side, as network round trips are


def test_main_runs_until_stopped_and_prints_endpoint_and_platform_keys():
    out = io.StringIO()
    stop = threading.Event()
    thread = threading.Thread(
        target=server_module.main,
        args=(["--port", "0", "--create-platform-keys", "us=us-west-2+us-east-2"],),
        kwargs={"stdout": out, "stop_event": stop},
        daemon=True,
    )
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while "PLATFORM_KMS_KEYS=" not in out.getvalue():
            assert thread.is_alive() and time.monotonic() < deadline, out.getvalue()
            time.sleep(0.05)
        lines = dict(
            line.split("=", 1) for line in out.getvalue().splitlines() if "=" in line and " " not in line
        )
        endpoint_url, platform_keys = lines["KMS_ENDPOINT_URL"], lines["PLATFORM_KMS_KEYS"]
        geo, arn = platform_keys.split("=", 1)
        assert geo == "us"
        replica_arn = arn.replace("us-west-2", "us-east-2")
        ciphertext = make_client(endpoint_url).encrypt(KeyId=arn, Plaintext=b"p", EncryptionContext=CTX)
        east = make_client(endpoint_url, "us-east-2")
        plaintext = east.decrypt(
            CiphertextBlob=ciphertext["CiphertextBlob"], KeyId=replica_arn, EncryptionContext=CTX
        )
        assert plaintext["Plaintext"] == b"p"
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_python_dash_m_runs_the_server_in_a_separate_process():
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
        [
            sys.executable,
            "-m",
            "devtools.local_kms",
            "--port",
            "0",
            "--create-platform-keys",
            "eu=eu-central-1",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        settings = {}
        for line in process.stdout:
            if "=" in line and " " not in line.strip():
                key, value = line.strip().split("=", 1)
                settings[key] = value
            if "PLATFORM_KMS_KEYS" in settings:
                break
        assert "PLATFORM_KMS_KEYS" in settings, (
            process.stderr.read() if process.poll() is not None else settings
        )
        arn = settings["PLATFORM_KMS_KEYS"].removeprefix("eu=")
        eu = make_client(settings["KMS_ENDPOINT_URL"], "eu-central-1")
        metadata = eu.describe_key(KeyId=arn)["KeyMetadata"]
        assert (metadata["MultiRegion"], metadata["KeyUsage"]) == (True, "ENCRYPT_DECRYPT")
        data_key = eu.generate_data_key(KeyId=arn, KeySpec="AES_256", EncryptionContext=CTX)
        assert (
            eu.decrypt(CiphertextBlob=data_key["CiphertextBlob"], KeyId=arn, EncryptionContext=CTX)[
                "Plaintext"
            ]
            == data_key["Plaintext"]
        )
        # This process's admin helpers cannot reach the other process's keys: state is per process.
        with pytest.raises(KeyError):
            admin.get_key(arn)
    finally:
        process.terminate()
        try:
            returncode = process.wait(timeout=15)
        finally:
            watchdog.cancel()
            process.stdout.close()
            process.stderr.close()
    assert returncode == 0


def test_parse_platform_keys():
    assert server_module.parse_platform_keys("us=us-west-2+us-east-2, eu=eu-central-1") == {
        "us": ["us-west-2", "us-east-2"],
        "eu": ["eu-central-1"],
    }
    assert server_module.parse_platform_keys("") == {}
    with pytest.raises(ValueError, match="geo=region"):
        server_module.parse_platform_keys("us-west-2")


# --------------------------------------------------------------------------------------------
# Fidelity guard
# --------------------------------------------------------------------------------------------


def test_fidelity_guard_moto_seams_are_where_the_layer_expects_them(local_server):
    assert moto.__version__ == "5.2.5" == fidelity.EXPECTED_MOTO_VERSION, (
        f"moto is {moto.__version__}: the local KMS fidelity layer (devtools/local_kms/fidelity.py) "
        "was written against moto 5.2.5. Re-read moto/kms/{models,responses,utils}.py, adapt the patches "
        "and PATCH_POINTS, then update EXPECTED_MOTO_VERSION and this assertion."
    )
    problems = fidelity.check_seams() + fidelity.check_seams(server_module.SERVER_SEAMS)
    assert not problems, "moto moved seams the local KMS relies on:\n" + "\n".join(problems)

    assert fidelity.is_applied(), "LocalKmsServer.start() must apply the fidelity layer"
    patched = {seam.path for seam in fidelity.PATCH_POINTS if seam.patched}
    installed = {
        f"{owner.__name__}.{name}" if inspect.ismodule(owner) else f"{owner.__module__}.{owner.__name__}.{name}"
        for owner, name, _ in fidelity._PATCHES
    }
    assert patched == installed, "PATCH_POINTS and the installed patches disagree"
    for seam in fidelity.PATCH_POINTS:
        if seam.patched:
            assert getattr(seam.resolve(), "__konnect_fidelity__", False), f"{seam.path} is not patched"

    key = admin.get_key(admin.create_key(region=REGION, multi_region=True))
    missing = [
        name for name in (*fidelity.KEY_ATTRIBUTES, "multi_region_configuration") if not hasattr(key, name)
    ]
    assert not missing, f"moto's Key lost attributes the fidelity layer uses: {missing}"
    assert moto_kms_utils.KEY_ID_LEN == 36, "moto changed its ciphertext header; revisit key_for_ciphertext()"


def test_fidelity_apply_is_idempotent_and_names_a_missing_seam(monkeypatch):
    before = moto.kms.responses.KmsResponse.encrypt
    fidelity.apply()
    fidelity.apply()
    assert moto.kms.responses.KmsResponse.encrypt is before

    assert fidelity.check_seams([fidelity.Seam("moto.kms.models.KmsBackend.vanished", ("self",), True)]) == [
        "moto seam missing: moto.kms.models.KmsBackend.vanished"
    ]
    changed = fidelity.check_seams(
        [fidelity.Seam("moto.kms.models.KmsBackend.decrypt", ("self", "blob"), True)]
    )
    assert changed and "moto seam changed: moto.kms.models.KmsBackend.decrypt" in changed[0]

    monkeypatch.setattr(fidelity, "is_applied", lambda: False)
    monkeypatch.setattr(
        fidelity,
        "PATCH_POINTS",
        (*fidelity.PATCH_POINTS, fidelity.Seam("moto.kms.models.KmsBackend.vanished")),
    )
    with pytest.raises(RuntimeError, match=r"KmsBackend\.vanished"):
        fidelity.apply()
    assert moto.kms.responses.KmsResponse.encrypt is before


def test_package_re_exports_the_server_and_admin_helpers():
    for name in local_kms_package.__all__:
        assert getattr(local_kms_package, name) is not None
    assert local_kms_package.create_key is admin.create_key
    assert local_kms_package.LocalKmsServer is LocalKmsServer


def test_multi_region_key_ids_have_the_aws_shape(local_server):
    arn = admin.create_key(region=REGION, multi_region=True)
    key_id = arn.rsplit("/", 1)[1]
    assert key_id.startswith("mrk-") and len(key_id) == 36
    assert all(c in "0123456789abcdef" for c in key_id[4:])
