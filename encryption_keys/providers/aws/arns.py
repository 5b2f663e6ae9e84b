"""Konnect geos ↔ AWS regions, and KMS key ARN parsing: the only code that knows what an ARN looks like."""

from __future__ import annotations

import re
from dataclasses import dataclass

from encryption_keys.providers.base import InvalidKeyRef

GEO_AWS_REGIONS: dict[str, tuple[str, ...]] = {
    "au": ("ap-southeast-2", "ap-southeast-4"),
    "eu": ("eu-central-1", "eu-west-1"),
    "me": ("me-central-1", "me-south-1"),
    "us": ("us-west-2", "us-east-2"),
    "in": ("ap-south-1", "ap-south-2"),
    "sg": ("ap-southeast-1",),
}

_KEY_ARN = re.compile(
    r"^arn:(?P<partition>aws|aws-us-gov|aws-cn):kms:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):(?P<account>\d{12}):"
    r"key/(?P<key_id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$"
)
_ALIAS_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[^:]*:\d{12}:alias/")


class InvalidKeyArn(InvalidKeyRef):
    """The text is not a usable KMS key ARN; `reason` says why in words a person can act on."""


@dataclass(frozen=True, slots=True)
class KeyArn:
    arn: str
    partition: str
    region: str
    account: str
    key_id: str

    @property
    def is_multi_region(self) -> bool:
        return self.key_id.startswith("mrk-")

    def in_region(self, aws_region: str) -> str:
        """The same key in another AWS region (a multi-region replica has the same key id)."""
        return f"arn:{self.partition}:kms:{aws_region}:{self.account}:key/{self.key_id}"

    @property
    def identity(self) -> str:
        """Which key this is, whatever region it is addressed in: `<partition>:<account>:<key id>`.

        A multi-region key and its replicas share the id (`mrk-…`), so every sibling has one identity; a
        single-region key id is unique anyway. Aliases never get this far (`parse_key_arn` refuses them).
        """
        return f"{self.partition}:{self.account}:{self.key_id}"

    def sibling_arns(self) -> list[str]:
        """This ARN, and for a multi-region key the same key in every AWS region of every Konnect geo
        (the only regions a linked key, a replica it fails over to, or a data key's wrapping key can be in)."""
        if not self.is_multi_region:
            return [self.arn]
        regions = dict.fromkeys([self.region, *(r for regions in GEO_AWS_REGIONS.values() for r in regions)])
        return [self.in_region(region) for region in regions]


def parse_key_arn(text: str) -> KeyArn:
    text = (text or "").strip()
    if not text:
        raise InvalidKeyArn("Enter the key's ARN.")
    if _ALIAS_ARN.match(text):
        raise InvalidKeyArn(
            "Alias ARNs are not accepted: an alias can be re-pointed to another key, which would silently change "
            "which key protects your data. Use the key ARN (…:key/<key id>)."
        )
    match = _KEY_ARN.match(text)
    if not match:
        raise InvalidKeyArn(
            "This is not a KMS key ARN. Expected arn:aws:kms:<aws-region>:<12-digit account>:key/<key id>, "
            "where the key id is a UUID or a multi-region id mrk-<32 hex>."
        )
    return KeyArn(arn=text, **match.groupdict())


def key_identity(text: str) -> str:
    """The identity of a stored key ARN (see `KeyArn.identity`); text that is not a key ARN stands for itself."""
    try:
        return parse_key_arn(text).identity
    except InvalidKeyArn:
        return (text or "").strip()


def geo_of_aws_region(aws_region: str) -> str | None:
    for geo, regions in GEO_AWS_REGIONS.items():
        if aws_region in regions:
            return geo
    return None


def aws_region_of(arn: str) -> str:
    """The AWS region field of any ARN (no validation: stored ARNs were validated when linked)."""
    parts = arn.split(":")
    return parts[3] if len(parts) > 5 else ""


def failover_arns(arn: str) -> list[str]:
    """The ARN first, then for a multi-region key the same key in the geo's other AWS regions."""
    parts = arn.split(":")
    if len(parts) != 6 or not parts[5].startswith("key/mrk-"):
        return [arn]
    region = parts[3]
    others = [r for r in GEO_AWS_REGIONS.get(geo_of_aws_region(region), ()) if r != region]
    return [arn, *(":".join([*parts[:3], other, *parts[4:]]) for other in others)]
