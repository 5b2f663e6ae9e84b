"""The encryption keys' tests call KMS, all but the envelope core's (envelope/conftest.py opts them out)."""

import pytest


@pytest.fixture(autouse=True)
def kms_for_every_test(local_kms):
    """The local KMS server for every test here (tests/conftest.py's `local_kms`)."""
    return local_kms
