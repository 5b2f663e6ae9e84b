"""The AWS KMS pre-link checks, and the key-policy statements customers copy.

Ordered checks against KMS, each pass / warn / fail with a human explanation and the fix. The run stops at the
first blocking failure (a bad ARN, a key outside the region's AWS regions, a key KMS cannot describe, or one
that is not an enabled symmetric encryption key): the checks after it are shown as not run, and KMS is not asked
anything more — no DescribeKey of a key in the wrong region, no round trip with a key that cannot work. Every
KMS call is logged by `kms.py` under the organization.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings

from encryption_keys import health
from encryption_keys.envelope import ErrorCode
from encryption_keys.providers import remedy_for
from encryption_keys.providers.aws import arns, kms
from encryption_keys.providers.aws.health import deletion_date_of, key_regions, snapshot
from encryption_keys.verification import Checklist, Outcome, Verdict, run_checks
from konnect_admin.models import Region

PLATFORM_ACTIONS = [
    "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GetKeyRotationStatus", "kms:GenerateDataKey*",
    "kms:DescribeKey",
]
# DescribeKey and GetKeyRotationStatus carry no encryption context: a condition on it would never match.
CONTEXT_FREE_ACTIONS = ["kms:DescribeKey", "kms:GetKeyRotationStatus"]


@dataclass
class _Run:
    organization_id: str
    region: str
    key_arn: str
    arn: arns.KeyArn | None = None
    description: dict = field(default_factory=dict)
    rotation: bool | None = None

    @property
    def geo_regions(self) -> tuple[str, ...]:
        return arns.GEO_AWS_REGIONS[self.region]

    @property
    def geo_label(self) -> str:
        return Region(self.region).label


def _explain_kms_error(error: kms.KmsError, operation: str, run: _Run) -> tuple[str, str]:
    """What a refusal means while linking, and its fix: the code's remedy (`envelope.ERROR_CODES`), except where
    linking changes the advice (a key not found is most often a typo in the ARN; access is fixed with the
    statement this page shows)."""
    org = run.organization_id
    link_time = {
        ErrorCode.KEY_NOT_FOUND: (
            f"KMS has no key with this ARN in account {run.arn.account}, region {run.arn.region}: "
            "it was deleted, or the ARN has a typo.",
            "Copy the ARN from the AWS KMS console (Customer managed keys → your key → ARN).",
        ),
        ErrorCode.KEY_ACCESS_DENIED: (
            f"KMS refused {operation}: the key policy does not let the platform role use this key"
            + (f" for this organization (encryption context konnect:org = {org}), or a Deny statement matches it."
               if operation in ("GenerateDataKey", "Decrypt") else "."),
            "Add the key-policy statements shown on this page, and remove any Deny that matches this organization.",
        ),
        ErrorCode.KEY_DISABLED: ("The key is disabled in AWS KMS.", ""),
        ErrorCode.KEY_PENDING_DELETION: ("The key is pending deletion in AWS KMS.", ""),
        ErrorCode.KMS_UNAVAILABLE: (f"AWS KMS could not be reached or throttled {operation}.", ""),
        ErrorCode.INTEGRITY: ("KMS returned a data key that did not decrypt back to itself.", ""),
    }
    explanation, fix = link_time.get(error.code, (f"KMS refused {operation}.", ""))
    return f"{explanation} ({error.aws_code or error.code})", fix or remedy_for(error.code, key_ref=run.key_arn)


def _arn_syntax(run: _Run) -> Outcome:
    try:
        run.arn = arns.parse_key_arn(run.key_arn)
    except arns.InvalidKeyArn as invalid:
        return Verdict.FAIL, invalid.reason, "Paste the key ARN: arn:aws:kms:<aws-region>:<account>:key/<key id>."
    return Verdict.PASS, f"A key ARN in account {run.arn.account}, AWS region {run.arn.region}.", ""


def _arn_region(run: _Run) -> Outcome:
    allowed = ", ".join(run.geo_regions)
    if run.arn.region in run.geo_regions:
        return Verdict.PASS, f"{run.arn.region} is an AWS region of the {run.geo_label} geo ({allowed}).", ""
    other = arns.geo_of_aws_region(run.arn.region)
    hint = f", or choose the {Region(other).label} region for this key" if other else ""
    return (Verdict.FAIL, f"The key is in {run.arn.region}, which is not an AWS region of the {run.geo_label} "
            f"geo ({allowed}): data of this region must stay there.", f"Use a key in {allowed}{hint}.")


def _describe_key(run: _Run) -> Outcome:
    try:
        run.description = kms.describe_key(key_arn=run.arn.arn, organization_id=run.organization_id)
    except kms.KmsError as error:
        return Verdict.FAIL, *_explain_kms_error(error, "DescribeKey", run), error.code.value
    return Verdict.PASS, "DescribeKey succeeded: the key exists and the platform may read its metadata.", ""


def _key_state(run: _Run) -> Outcome:
    state = run.description.get("KeyState", "")
    if state == "Enabled":
        return Verdict.PASS, "The key is enabled.", ""
    if state == "PendingDeletion":
        when = deletion_date_of(run.description)
        on = f" on {when:%Y-%m-%d}" if when else ""
        return (Verdict.FAIL, f"The key is scheduled for deletion{on}: data under it would be lost.",
                "Cancel the key deletion in AWS KMS and enable the key.")
    if state == "Disabled":
        return Verdict.FAIL, "The key is disabled: KMS refuses to use it.", "Enable the key in AWS KMS."
    return Verdict.FAIL, f"The key is in state {state}; it must be Enabled.", "Wait until the key is Enabled."


def _key_spec(run: _Run) -> Outcome:
    spec = run.description.get("KeySpec", "")
    if spec == "SYMMETRIC_DEFAULT":
        return Verdict.PASS, "A symmetric encryption key (SYMMETRIC_DEFAULT).", ""
    return (Verdict.FAIL, f"The key spec is {spec}: only AWS KMS symmetric keys (SYMMETRIC_DEFAULT) can wrap data keys.",
            "Create a symmetric key (Key type: Symmetric, Key usage: Encrypt and decrypt).")


def _key_usage(run: _Run) -> Outcome:
    usage = run.description.get("KeyUsage", "")
    if usage == "ENCRYPT_DECRYPT":
        return Verdict.PASS, "Key usage is ENCRYPT_DECRYPT.", ""
    return (Verdict.FAIL, f"The key usage is {usage}; it must be ENCRYPT_DECRYPT.",
            "Create a key whose usage is Encrypt and decrypt.")


def _multi_region(run: _Run) -> Outcome:
    if run.description.get("MultiRegion"):
        kind = (run.description.get("MultiRegionConfiguration") or {}).get("MultiRegionKeyType", "").lower()
        return Verdict.PASS, f"A multi-region key{f' ({kind})' if kind else ''}.", ""
    if len(run.geo_regions) == 1:
        return Verdict.PASS, f"A single-region key; the {run.geo_label} geo has one AWS region.", ""
    return (Verdict.WARN, f"A single-region key: while {run.arn.region} is unavailable, data of the {run.geo_label} "
            "region cannot be decrypted, and a single-region key can never be replicated.",
            f"Konnect recommends a multi-region key (mrk-…) replicated to {', '.join(run.geo_regions)}.")


def _replicas(run: _Run) -> Outcome:
    if not run.description.get("MultiRegion"):
        if len(run.geo_regions) == 1:
            return Verdict.PASS, "No replica needed in a one-region geo.", ""
        return Verdict.SKIPPED, "Only multi-region keys have replicas (see the check above).", ""
    present = key_regions(run.description)
    missing = [region for region in run.geo_regions if region not in present]
    if not missing:
        return Verdict.PASS, f"The key exists in every AWS region of the geo: {', '.join(run.geo_regions)}.", ""
    commands = "; ".join(f"aws kms replicate-key --key-id {run.arn.arn} --replica-region {r}" for r in missing)
    return (Verdict.WARN, f"No replica in {', '.join(missing)}: failover to that region is not possible.",
            f"Replicate the key: {commands}.")


def _rotation(run: _Run) -> Outcome:
    try:
        run.rotation = kms.get_key_rotation_status(key_arn=run.arn.arn, organization_id=run.organization_id)
    except kms.KmsError as error:
        explanation, fix = _explain_kms_error(error, "GetKeyRotationStatus", run)
        return Verdict.WARN, f"Could not read the rotation status. {explanation}", fix, error.code.value
    if run.rotation:
        return Verdict.PASS, "Automatic rotation is on (same ARN; transparent to Konnect).", ""
    return (Verdict.WARN, "Automatic key rotation is off.",
            f"Enable it: aws kms enable-key-rotation --key-id {run.arn.arn}.")


def _round_trip(run: _Run) -> Outcome:
    try:
        health.prove_key_use(key_ref=run.arn.arn, organization_id=run.organization_id, region=run.region,
                             purpose="verification")
    except kms.KmsError as error:
        return Verdict.FAIL, *_explain_kms_error(error, error.operation, run), error.code.value
    return (Verdict.PASS, "GenerateDataKey → Decrypt succeeded with this organization's encryption context "
            f"(konnect:org = {run.organization_id}): the key policy lets the platform use this key for you.", "")


# (id, title, blocking, check) in the order run and shown. A failed blocking check ends the run: every
# later check needs what it proved (a parsable ARN of this geo, a described, enabled symmetric key).
CHECKS: list[tuple[str, str, bool, Callable[[_Run], Outcome]]] = [
    ("arn_syntax", "Key ARN", True, _arn_syntax),
    ("arn_region", "Key region belongs to the Konnect region", True, _arn_region),
    ("describe_key", "Key found (DescribeKey)", True, _describe_key),
    ("key_state", "Key enabled", True, _key_state),
    ("key_spec", "Symmetric key (SYMMETRIC_DEFAULT)", True, _key_spec),
    ("key_usage", "Key usage ENCRYPT_DECRYPT", True, _key_usage),
    ("multi_region", "Multi-region key", False, _multi_region),
    ("replicas", "Replicated to every AWS region of the geo", False, _replicas),
    ("rotation", "Automatic key rotation", False, _rotation),
    ("round_trip", "Encrypt and decrypt with your encryption context", True, _round_trip),
]


def verify(*, organization, region: str, key_ref: str) -> Checklist:
    run = _Run(organization_id=str(organization.pk), region=region, key_arn=(key_ref or "").strip())
    checklist = run_checks(CHECKS, run, key_ref=run.key_arn, region=region, provider="aws")
    if run.description:
        checklist.metadata = snapshot(run.description, run.rotation)
    return checklist


def key_policy_statements(organization) -> list[dict]:
    """The statements an Org Admin adds to the key policy (confused-deputy safe: pinned to this organization)."""
    principal = {"AWS": settings.PLATFORM_KMS_PRINCIPAL}
    use_actions = [action for action in PLATFORM_ACTIONS if action not in CONTEXT_FREE_ACTIONS]
    return [
        {
            "Sid": "KonnectAdminUseKeyForThisOrganization",
            "Effect": "Allow",
            "Principal": principal,
            "Action": use_actions,
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:EncryptionContext:konnect:org": str(organization.pk)}},
        },
        {
            "Sid": "KonnectAdminReadKeyHealth",
            "Effect": "Allow",
            "Principal": principal,
            "Action": CONTEXT_FREE_ACTIONS,
            "Resource": "*",
        },
    ]


def key_policy_json(organization) -> str:
    return json.dumps(key_policy_statements(organization), indent=2)
