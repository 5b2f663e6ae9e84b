"""A customer key belongs to one organization of the installation.

The organization that links a key owns it — the key itself, however its reference addresses it (an AWS
multi-region key's replicas share its identity: `KeyRef.identity`, computed by the key's provider). It keeps owning it for as long as the key still wraps any of its
data keys: after an unlink, and as the old key of a key replacement until every data key is re-wrapped
(running, interrupted or finished with failures alike). Another organization asking to link or replace with that
key, or a sibling of it, is refused before the key service is asked anything; the platform's own keys are nobody's to link.

The database has the last word on links (`EncryptionKey.key_identity` is unique), so two organizations linking
one key at the same moment cannot both succeed. Refusals never name the owner.
"""

from __future__ import annotations

from django.conf import settings

from encryption_keys.models import DataKey, EncryptionKey
from encryption_keys.providers import InvalidKeyRef, KeyRef, key_identity, parse_key_ref, provider_for
from konnect_admin.models import Organization, Region


class KeyInUse(Exception):
    """The key cannot be linked for this organization and region; `code` is stable, the message is for people."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.code = code


OWNED_ELSEWHERE = (
    "This KMS key is already in use by another organization (or it is a replica of such a key). A key protects the "
    "data of one organization only: create a key for this organization and give it the key-policy statements "
    "shown on this page."
)


def refuse_key_in_use(*, organization: Organization, region: str, key_arn: str) -> None:
    """Raise KeyInUse unless `key_arn` may become `organization`'s key for `region`.

    Text that is not a key reference passes: the verification checklist explains what is wrong with it.
    """
    try:
        ref = parse_key_ref(key_arn)
    except InvalidKeyRef:
        return
    if ref.identity in {key_identity(platform) for platform in settings.PLATFORM_KMS_KEYS.values()}:
        raise KeyInUse("This is the platform's own key, which protects the data of organizations without a "
                       "key of their own. Link a key of your AWS account.", code="platform_key")
    link = EncryptionKey.objects.filter(key_identity=ref.identity).exclude(organization=organization, region=region)
    link = link.values_list("organization_id", "region").first()
    if link is not None and link[0] == organization.pk:
        raise KeyInUse(f"This key is already linked for your organization's {Region(link[1]).label} region. "
                       "Each Konnect region needs a key of its own.", code="key_linked_in_another_region")
    if link is not None or _wraps_data_of_others(ref, organization):
        raise KeyInUse(OWNED_ELSEWHERE, code="key_owned_by_another_organization")


def _wraps_data_of_others(ref: KeyRef, organization: Organization) -> bool:
    siblings = provider_for(ref.ref).sibling_refs(ref.ref)
    return (
        DataKey.objects.filter(wrapping_key_arn__in=siblings, shredded_at__isnull=True)
        .exclude(organization=organization)
        .exists()
    )
