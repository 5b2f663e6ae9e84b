"""The envelope core is pure Python: its tests need no Django and no KMS, and run on their own with
`make test-envelope` (`pytest tests/encryption_keys/envelope -p no:django`). Nothing here may import Django."""

import pytest


@pytest.fixture
def kms_for_every_test():
    """Overrides tests/encryption_keys/conftest.py's autouse fixture of the same name: no local KMS here."""
    return None
