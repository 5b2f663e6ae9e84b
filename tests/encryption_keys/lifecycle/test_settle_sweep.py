"""The settle sweep of a re-wrap: data keys another process made under the old key just after the switch."""

import pytest

from encryption_keys import services
from encryption_keys.lifecycle import replace_key
from encryption_keys.lifecycle.models import RewrapJob, RewrapState
from encryption_keys.models import DataKey
from tests.testapp.models import SealedNote

pytestmark = pytest.mark.django_db(transaction=True)


def test_settle_sweep_catches_a_data_key_made_under_the_old_key_after_the_last_batch(org, org_admin, cmek, new_cmek,
                                                                                     settings, monkeypatch):
    """Another process that had not seen the switch yet makes a DEK under the old key after the run found no
    more: the final sweep, once the settle period is over, re-wraps it too.

    The other process writes while the run waits out the settle period. It used to be a timer racing that
    wait (0.5 s to make a DEK through KMS, 1.5 s to settle): on a loaded machine the sweep came first."""
    import threading
    import time

    from django.db import connection

    from encryption_keys.lifecycle import rewrap as rewrap_module
    from encryption_keys.lifecycle import rewrap_data_keys
    from encryption_keys.providers.aws import kms

    settings.KEY_REWRAP_SETTLE_SECONDS = 60  # never over before the run's first passes end; the wait takes no time
    services.link_key(organization=org, region="us", key_arn=cmek, name="k", actor=org_admin)
    SealedNote.objects.create(organization=org, scope_ref="early", text="early")
    job = replace_key(organization=org, region="us", new_key_arn=new_cmek, actor=org_admin, start=False)
    straggler, waits = {}, []

    def lagging_writer():  # GenerateDataKey under the old key, then insert the DEK row
        row = DataKey(organization=org, region="us", purpose="debugger.payload", scope_ref="late",
                      wrapping_key_arn=cmek, encrypt_until=job.created_at)
        _plaintext, row.wrapped = kms.generate_data_key(key_arn=cmek, context=row.encryption_context(),
                                                        organization_id=org.pk)
        row.save(force_insert=True)
        straggler["pk"] = row.pk
        connection.close()

    class SettlePeriod:
        """The run's clock: its settle wait is the moment the other process writes (and takes no time)."""

        def __getattr__(self, name):
            return getattr(time, name)

        def sleep(self, seconds):
            waits.append(seconds)
            writer = threading.Thread(target=lagging_writer)
            writer.start()
            writer.join()

    monkeypatch.setattr(rewrap_module, "time", SettlePeriod())
    job = rewrap_data_keys(job)
    assert len(waits) == 1 and 0 < waits[0] <= 60  # the run found nothing, then waited out the rest
    assert job.state == RewrapState.COMPLETED and (job.done, job.total) == (2, 2)
    assert DataKey.objects.get(pk=straggler["pk"]).wrapping_key_arn == new_cmek
    assert RewrapJob.objects.get(pk=job.pk).done == 2
