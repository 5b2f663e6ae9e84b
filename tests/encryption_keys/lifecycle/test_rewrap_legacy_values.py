"""Re-wrapping data keys never touches values: legacy v1 and current v2 values keep reading after the vault
is put under the CMEK ("Protect with CMEK") and after the key is replaced, and reseal still upgrades them."""

from io import StringIO

import pytest
from django.core.management import call_command

from encryption_keys import keyring, services
from encryption_keys.envelope import ErrorCode
from encryption_keys.lifecycle import replace_key
from encryption_keys.lifecycle.models import RewrapState
from encryption_keys.models import DataKey
from tests.sealed_rows import encrypted_fields, raw_envelope, reload, seal_tenant, write_legacy_v1
from tests.testapp.models import SealedNote
from vault.protection import vault_protect_with_cmek

pytestmark = pytest.mark.django_db


def stored(rows) -> dict:
    return {(row._meta.label_lower, row.pk, f.name): raw_envelope(row, f)
            for row in rows for f in encrypted_fields(row) if raw_envelope(row, f) is not None}


def readable(rows) -> dict:
    keyring.reset_for_tests()  # a process that has never unwrapped these keys
    values = {}
    for row in rows:
        fresh = reload(row)
        for field in encrypted_fields(fresh):
            sealed = getattr(fresh, field.name)
            if sealed is None:
                continue
            result = sealed.reveal_or_error()
            values[fresh._meta.label_lower, fresh.pk, field.name] = result.value if result.ok else result.error.code
    return values


def test_v1_and_v2_values_read_after_vault_protection_and_key_replacement(cmek, new_cmek):
    tenant = seal_tenant("Initech")  # its control plane predates the CMEK: the vault is under the platform key
    for row in tenant.rows():
        write_legacy_v1(row)
    current = SealedNote.objects.create(organization=tenant.org, text="written as v2")
    rows = [*tenant.rows(), current]
    before_values, before_envelopes = readable(rows), stored(rows)
    assert {envelope[0] for envelope in before_envelopes.values()} == {1, 2}

    services.link_key(organization=tenant.org, region="us", key_ref=cmek, name="primary", actor=tenant.admin)
    assert vault_protect_with_cmek(actor=tenant.admin, control_plane=tenant.cp).rewrapped == 1  # the store's DEK
    assert DataKey.objects.get(pk=reload(tenant.secret).value.data_key_id).wrapping_key_ref == cmek
    job = replace_key(organization=tenant.org, region="us", new_key_ref=new_cmek, actor=tenant.admin)
    assert job.state == RewrapState.COMPLETED
    assert DataKey.objects.get(pk=reload(tenant.secret).value.data_key_id).wrapping_key_ref == new_cmek

    assert stored(rows) == before_envelopes  # no value was rewritten
    assert readable(rows) == before_values
    assert not any(isinstance(value, ErrorCode) for value in before_values.values())  # plaintexts, not errors

    call_command("reseal", "--yes", stdout=StringIO(), stderr=StringIO())
    assert {envelope[0] for envelope in stored(rows).values()} == {2}
    assert readable(rows) == before_values
