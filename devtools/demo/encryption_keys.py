"""The encryption keys' demo step: Acme links a customer key, made on the local KMS, for its US region."""

from devtools import local_kms
from encryption_keys import services


def link_demo_key(demo, log) -> None:
    """Acme links a customer key in the US region: a multi-region key in us-west-2, replicated to us-east-2."""
    organization, admin = demo.organizations["Acme"], demo.users["admin@acme.test"]
    arn = local_kms.create_key(region="us-west-2", description="Acme customer key (demo)", multi_region=True,
                               rotation=True)
    local_kms.replicate_key(arn, to_region="us-east-2")
    try:
        linked = services.link_key(organization=organization, region="us", key_ref=arn, name="Acme US key",
                                   description="Customer-managed key for the US region (demo)", actor=admin)
    except services.KeyVerificationFailed as failure:
        log(f"Could not link the Acme demo key: {failure}")
        return
    passed = sum(check.verdict == "pass" for check in linked.checklist.checks)
    log(f"Linked CMEK “{linked.key.name}” for Acme (US): {arn} — multi-region (us-west-2 → us-east-2), rotation on; "
        f"checklist: {passed} of {len(linked.checklist.checks)} passed, {len(linked.checklist.warnings)} warnings.")
