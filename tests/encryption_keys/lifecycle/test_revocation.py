"""The revocation bound: a revoked key stops decrypting within DATAKEY_CACHE_TTL in a process, at once with
TTL 0, and within GENERATION_CHECK_SECONDS everywhere once the shared cache generation is bumped."""

import io
import time

import pytest
from django.core.cache import cache as shared_cache
from django.core.management import call_command

from devtools import local_kms
from encryption_keys import keyring, services
from encryption_keys.models import KeyStatus
from tests.testapp.models import SealedNote

pytestmark = pytest.mark.django_db
SECRET = "revocable value"


@pytest.fixture
def note(org, org_admin, cmek):
    services.link_key(organization=org, region="us", key_ref=cmek, name="k", actor=org_admin)
    return SealedNote.objects.create(organization=org, text=SECRET)


def reader_with_warm_cache(note) -> tuple[float, float]:
    """A process that reads the value once (DEK unwrapped and cached); returns when that read began and ended:
    the DEK entered the cache in between."""
    keyring.reset_for_tests()
    began = time.monotonic()
    assert SealedNote.objects.get(pk=note.pk).text.reveal() == SECRET
    return began, time.monotonic()


def reads_until_decryption_fails(note, *, limit: float) -> tuple[float, float, str]:
    """Reads until one fails: (when the last successful read began, when the failing one ended, its code).

    The bounds are asserted on these, not on the gap between the two reads, which only a loaded machine sets.
    """
    row = SealedNote.objects.get(pk=note.pk)
    started = last_success = time.monotonic()
    while time.monotonic() - started < limit:
        attempt = time.monotonic()
        result = row.text.reveal_or_error()
        if not result.ok:
            return last_success, time.monotonic(), result.error.code.value
        last_success = attempt
        time.sleep(0.05)
    raise AssertionError(f"still decrypting {limit}s after the key was revoked")


def test_revoked_key_keeps_decrypting_at_most_the_ttl(note, cmek, settings):
    settings.DATAKEY_CACHE_TTL = 2
    began, filled = reader_with_warm_cache(note)
    local_kms.disable_key(cmek)
    try:
        assert SealedNote.objects.get(pk=note.pk).text.reveal() == SECRET  # served from the cache, within the bound
        last_success, failed, code = reads_until_decryption_fails(note, limit=2 + 10)
    finally:
        local_kms.enable_key(cmek)
    assert code == "key_disabled"
    assert last_success < filled + 2  # no read began after the TTL and was still served from the cache
    assert failed >= began + 2  # and until the TTL, the cache answered (no KMS call, which would have failed)


def test_ttl_zero_fails_immediately(note, cmek, settings):
    settings.DATAKEY_CACHE_TTL = 0
    reader_with_warm_cache(note)
    local_kms.disable_key(cmek)
    try:
        result = SealedNote.objects.get(pk=note.pk).text.reveal_or_error()
    finally:
        local_kms.enable_key(cmek)
    assert not result.ok and result.error.code == "key_disabled"


def test_a_generation_bump_from_another_process_drops_this_processs_cache(note, cmek, settings):
    settings.DATAKEY_CACHE_TTL = 60
    reader_with_warm_cache(note)
    local_kms.disable_key(cmek)
    try:
        assert SealedNote.objects.get(pk=note.pk).text.reveal() == SECRET  # TTL 60: still cached
        shared_cache.get_or_set(keyring.GENERATION_KEY, 0, timeout=None)
        shared_cache.incr(keyring.GENERATION_KEY)  # what check_keys / a replacement does in another process
        bumped = time.monotonic()
        last_success, _failed, code = reads_until_decryption_fails(note, limit=keyring.GENERATION_CHECK_SECONDS + 10)
    finally:
        local_kms.enable_key(cmek)
    assert code == "key_disabled"
    assert last_success < bumped + keyring.GENERATION_CHECK_SECONDS  # no cached read once the check was due


def test_check_keys_evicts_the_revoked_keys_data_keys_at_once(note, cmek, settings):
    settings.DATAKEY_CACHE_TTL = 60
    reader_with_warm_cache(note)
    local_kms.disable_key(cmek)
    try:
        out = io.StringIO()
        call_command("check_keys", stdout=out)
        assert "status changed: healthy → disabled" in out.getvalue()
        result = SealedNote.objects.get(pk=note.pk).text.reveal_or_error()
    finally:
        local_kms.enable_key(cmek)
    assert not result.ok and result.error.code == "key_disabled"
    # Once the key is back and checked again, the cached failure goes too.
    call_command("check_keys", stdout=io.StringIO())
    assert SealedNote.objects.get(pk=note.pk).text.reveal() == SECRET


def test_check_keys_prints_pending_deletion_date_and_days_left(note, cmek, org):
    deletion = local_kms.schedule_key_deletion(cmek, days=9)
    try:
        out = io.StringIO()
        call_command("check_keys", "--org", org.name, stdout=out)
    finally:
        local_kms.cancel_key_deletion(cmek)
        local_kms.enable_key(cmek)
    text = out.getvalue()
    assert f"pending deletion on {deletion:%Y-%m-%d}" in text
    assert "(8 days left)" in text or "(9 days left)" in text
    assert "automatic rotation:" in text
    assert org.encryption_keys.get().status == KeyStatus.PENDING_DELETION
