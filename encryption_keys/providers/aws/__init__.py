"""AWS KMS behind the key-provider seam: a linked key is a KMS key ARN.

Everything AWS lives in this package: the boto3 client with its error mapping, multi-region failover and call
record (`kms.py`), ARN parsing and the geo → AWS-region table (`arns.py`), the DescribeKey reading (`health.py`)
and the pre-link checks with the key-policy statements (`checks.py`).
"""

from __future__ import annotations

from encryption_keys.envelope import ErrorCode
from encryption_keys.providers.aws import arns, kms
from encryption_keys.providers.base import AccessStatement, KeyHealth, KeyProvider, KeyRef

_REMEDIES = {
    ErrorCode.KEY_DISABLED: "Re-enable the key in AWS KMS (console: Key actions → Enable, or aws kms enable-key).",
    ErrorCode.KEY_PENDING_DELETION: (
        "Cancel the key deletion in AWS KMS (aws kms cancel-key-deletion) and re-enable the key before the deletion "
        "date; after it, the data is gone for good."
    ),
    ErrorCode.KEY_ACCESS_DENIED: (
        "Restore the platform's statements in the key policy in AWS KMS (Organization settings → Encryption keys "
        "shows the statements to copy)."
    ),
    ErrorCode.KEY_NOT_FOUND: "Nothing can bring this data back: the key no longer exists in AWS KMS.",
    ErrorCode.KMS_UNAVAILABLE: (
        "Try again in a moment: it is usually temporary. If it lasts, check the AWS Health Dashboard for KMS in the "
        "key's region."
    ),
}


class AwsKmsProvider(KeyProvider):
    name = "aws"
    label = "AWS KMS"
    ref_label = "Key ARN"
    ref_example = "arn:aws:kms:<aws-region>:<account>:key/<key id>"

    @classmethod
    def recognises(cls, text: str) -> bool:
        return (text or "").strip().startswith("arn:")

    def parse(self, text: str) -> KeyRef:
        arn = arns.parse_key_arn(text)
        return KeyRef(ref=arn.arn, provider=self.name, identity=arn.identity, location=arn.region)

    def sibling_refs(self, key_ref: str) -> list[str]:
        return arns.parse_key_arn(key_ref).sibling_arns()

    def configuration_problem(self) -> str | None:
        return kms.configuration_problem()

    def reset_clients(self) -> None:
        kms.reset_clients()

    def generate_data_key(self, *, key_ref, context, organization_id=None):
        return kms.generate_data_key(key_ref=key_ref, context=context, organization_id=organization_id)

    def decrypt(self, *, key_ref, wrapped, context, organization_id=None):
        return kms.decrypt(key_ref=key_ref, wrapped=wrapped, context=context, organization_id=organization_id)

    def encrypt(self, *, key_ref, plaintext, context, organization_id=None):
        return kms.encrypt(key_ref=key_ref, plaintext=plaintext, context=context, organization_id=organization_id)

    def rewrap(self, *, source_ref, destination_ref, wrapped, context, organization_id=None):
        """ReEncrypt inside KMS, when both keys are KMS keys (the data key never leaves KMS)."""
        if not self.recognises(source_ref) or not self.recognises(destination_ref):
            return None
        return kms.re_encrypt(source_arn=source_ref, destination_arn=destination_ref, wrapped=wrapped,
                              context=context, organization_id=organization_id)

    def read_state(self, *, key_ref, organization_id=None, previous_metadata=None) -> KeyHealth:
        from encryption_keys.providers.aws.health import read_key_state

        return read_key_state(key_ref=key_ref, organization_id=organization_id,
                              rotation_enabled=(previous_metadata or {}).get("rotation_enabled"))

    def read_health(self, *, key_ref, organization_id, region, previous_metadata=None) -> KeyHealth:
        from encryption_keys.providers.aws.health import read_key_health

        return read_key_health(key_ref=key_ref, organization_id=organization_id, region=region)

    def verify(self, *, organization, region, key_ref):
        from encryption_keys.providers.aws import checks

        return checks.verify(organization=organization, region=region, key_ref=key_ref)

    def access_statement(self, organization, *, key_ref=None) -> AccessStatement:
        from encryption_keys.providers.aws import checks

        return AccessStatement(
            title="Key-policy statements",
            language="json",
            text=checks.key_policy_json(organization),
            instructions="Add these two statements to the Statement array of the key's policy in AWS KMS.",
            notes=(
                "The first lets the platform's role encrypt, decrypt, re-encrypt and generate data keys only for this "
                "organization: its condition pins kms:EncryptionContext:konnect:org to your organization id, so no "
                "other tenant can make the platform use your key (confused-deputy protection).",
                "DescribeKey and GetKeyRotationStatus carry no encryption context, so that condition would never "
                "match them: the second statement grants these two read-only calls (key metadata and rotation status "
                "for the health check) without it. They cannot encrypt or decrypt anything.",
            ),
        )

    def remedy(self, code: ErrorCode) -> str:
        return _REMEDIES.get(ErrorCode(code), "")

    def metadata_rows(self, metadata: dict) -> list[tuple[str, str]]:
        kind = (metadata.get("multi_region_key_type") or "").lower()
        return [
            ("Key spec", f"{metadata.get('key_spec') or '—'} · {metadata.get('key_usage') or '—'}"),
            ("Multi-region", f"yes ({kind})" if metadata.get("multi_region") else "no"),
            ("AWS regions", ", ".join(metadata.get("replica_regions") or []) or "—"),
        ]
