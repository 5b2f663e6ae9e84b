import pytest

from encryption_keys import local_kms, services
from encryption_keys.models import EncryptionKey


@pytest.fixture(autouse=True)
def rewrap_inline(settings):
    """Re-wraps run in the request/test thread. No settle sweep: one process, so no writer can be behind
    on the key switch (the sweep guards against other processes; see lifecycle.rewrap.settle_seconds)."""
    settings.KEY_REWRAP_INLINE = True
    settings.KEY_REWRAP_SETTLE_SECONDS = 0


@pytest.fixture
def linked_key(org, org_admin, cmek) -> EncryptionKey:
    """The org's US key, linked through the real Link flow (verification checklist included)."""
    return services.link_key(organization=org, region="us", key_arn=cmek, name="primary", actor=org_admin).key


@pytest.fixture
def new_cmek(org):
    """A second multi-region customer key, replicated like the first: the replacement."""
    arn = local_kms.create_key(region="us-west-2", description="replacement key", multi_region=True)
    local_kms.replicate_key(arn, to_region="us-east-2")
    return arn
