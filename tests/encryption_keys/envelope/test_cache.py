import threading
import uuid
from datetime import UTC, datetime

import pytest

from encryption_keys.envelope import (
    DataKeyCache,
    DataKeyCipher,
    DecryptionError,
    EncryptionUnavailable,
    ErrorCode,
    KeyScope,
    ScopeMismatch,
)

ARN_A = "arn:aws:kms:us-west-2:111122223333:key/mrk-aaaa"
ARN_B = "arn:aws:kms:us-west-2:111122223333:key/mrk-bbbb"
KEY = bytes(range(32))


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def cache(clock):
    return DataKeyCache(ttl=60, max_entries=3, failure_ttl=5, clock=clock)


def make_cipher(n=1, key=KEY):
    return DataKeyCipher(uuid.UUID(int=n), key)


def test_get_of_unknown_dek_is_a_miss(cache):
    assert cache.get(uuid.UUID(int=99)) is None
    assert cache.stats() == {"hits": 0, "misses": 1, "failures_served": 0, "evictions": 0}


def test_put_then_get_returns_the_same_cipher(cache):
    cipher = make_cipher()
    cache.put(cipher, wrapping_key_ref=ARN_A)
    assert cache.get(cipher.dek_id) is cipher
    assert len(cache) == 1
    assert cache.stats()["hits"] == 1


def test_entry_expires_after_ttl(cache, clock):
    cipher = make_cipher()
    cache.put(cipher, wrapping_key_ref=ARN_A)
    clock.advance(59.9)
    assert cache.get(cipher.dek_id) is cipher
    clock.advance(0.1)
    assert cache.get(cipher.dek_id) is None
    assert len(cache) == 0


def test_lru_bound_evicts_least_recently_used(cache):
    ciphers = [make_cipher(n) for n in range(1, 5)]
    for cipher in ciphers[:3]:
        cache.put(cipher, wrapping_key_ref=ARN_A)
    assert cache.get(ciphers[0].dek_id) is ciphers[0]  # 1 becomes most recent
    cache.put(ciphers[3], wrapping_key_ref=ARN_A)  # evicts 2, the least recent
    assert len(cache) == 3
    assert cache.get(ciphers[1].dek_id) is None
    assert [cache.get(c.dek_id) for c in (ciphers[0], ciphers[2], ciphers[3])] == [
        ciphers[0],
        ciphers[2],
        ciphers[3],
    ]
    assert cache.stats()["evictions"] == 1


def test_cached_failure_is_reraised_as_a_fresh_copy(cache):
    dek_id = uuid.UUID(int=7)
    when = datetime(2031, 7, 4, tzinfo=UTC)
    original = DecryptionError(
        ErrorCode.KEY_PENDING_DELETION, key_ref=ARN_A, deletion_date=when, detail="state"
    )
    cache.put_failure(dek_id, original, wrapping_key_ref=ARN_A)
    with pytest.raises(DecryptionError) as first:
        cache.get(dek_id)
    with pytest.raises(DecryptionError) as second:
        cache.get(dek_id)
    assert first.value is not original and second.value is not first.value
    assert (first.value.code, first.value.key_ref, first.value.deletion_date) == (
        ErrorCode.KEY_PENDING_DELETION,
        ARN_A,
        when,
    )
    assert first.value.detail == "state"
    assert cache.stats()["failures_served"] == 2


def test_cached_failure_keeps_its_class(cache):
    dek_id = uuid.UUID(int=8)
    cache.put_failure(dek_id, EncryptionUnavailable(ErrorCode.KMS_UNAVAILABLE))
    with pytest.raises(EncryptionUnavailable):
        cache.get(dek_id)


def test_cached_failure_expires_after_failure_ttl(cache, clock):
    dek_id = uuid.UUID(int=7)
    cache.put_failure(dek_id, DecryptionError(ErrorCode.KEY_DISABLED))
    clock.advance(4.9)
    with pytest.raises(DecryptionError):
        cache.get(dek_id)
    clock.advance(0.1)
    assert cache.get(dek_id) is None
    assert len(cache) == 0


def test_failure_ttl_zero_disables_negative_caching(clock):
    cache = DataKeyCache(failure_ttl=0, clock=clock)
    cache.put_failure(uuid.UUID(int=7), DecryptionError(ErrorCode.KEY_DISABLED))
    assert len(cache) == 0
    assert cache.get(uuid.UUID(int=7)) is None


def test_put_replaces_a_cached_failure(cache):
    cipher = make_cipher()
    cache.put_failure(cipher.dek_id, DecryptionError(ErrorCode.KMS_UNAVAILABLE))
    cache.put(cipher, wrapping_key_ref=ARN_A)
    assert cache.get(cipher.dek_id) is cipher


def test_ttl_zero_disables_caching(clock):
    cache = DataKeyCache(ttl=0, clock=clock)
    cipher = make_cipher()
    cache.put(cipher, wrapping_key_ref=ARN_A)
    assert len(cache) == 0
    assert cache.get(cipher.dek_id) is None


def test_lowering_ttl_at_runtime_drops_entries_at_once(cache, clock):
    cipher = make_cipher()
    cache.put(cipher, wrapping_key_ref=ARN_A)
    clock.advance(10)
    cache.ttl = 0
    assert len(cache) == 0
    assert cache.get(cipher.dek_id) is None
    cache.put(cipher, wrapping_key_ref=ARN_A)
    assert len(cache) == 0


def test_shorter_ttl_applies_to_existing_entries(cache, clock):
    cipher = make_cipher()
    cache.put(cipher, wrapping_key_ref=ARN_A)
    clock.advance(10)
    cache.ttl = 30
    assert cache.get(cipher.dek_id) is cipher
    clock.advance(20)
    assert cache.get(cipher.dek_id) is None


def test_evict_one_entry(cache):
    cipher = make_cipher()
    cache.put(cipher, wrapping_key_ref=ARN_A)
    assert cache.evict(cipher.dek_id) is True
    assert cache.evict(cipher.dek_id) is False
    assert cache.get(cipher.dek_id) is None


def test_evict_wrapping_key_drops_ciphers_and_failures_of_that_key_only(clock):
    cache = DataKeyCache(clock=clock)
    a1, a2, b1 = make_cipher(1), make_cipher(2), make_cipher(3)
    cache.put(a1, wrapping_key_ref=ARN_A)
    cache.put(a2, wrapping_key_ref=ARN_A)
    cache.put(b1, wrapping_key_ref=ARN_B)
    failed = uuid.UUID(int=4)
    cache.put_failure(failed, DecryptionError(ErrorCode.KEY_DISABLED), wrapping_key_ref=ARN_A)
    assert cache.evict_wrapping_key(ARN_A) == 3
    assert cache.get(a1.dek_id) is None and cache.get(a2.dek_id) is None
    assert cache.get(failed) is None
    assert cache.get(b1.dek_id) is b1
    assert cache.evict_wrapping_key(ARN_A) == 0


def test_purge_expired_counts_dropped_entries(cache, clock):
    cache.put(make_cipher(1), wrapping_key_ref=ARN_A)
    clock.advance(30)
    cache.put(make_cipher(2), wrapping_key_ref=ARN_A)
    clock.advance(30)
    assert cache.purge_expired() == 1
    assert len(cache) == 1


def test_clear_empties_the_cache(cache):
    cache.put(make_cipher(1), wrapping_key_ref=ARN_A)
    cache.put_failure(uuid.UUID(int=2), DecryptionError(ErrorCode.INTEGRITY))
    cache.clear()
    assert len(cache) == 0


def test_max_entries_must_be_positive():
    with pytest.raises(ValueError):
        DataKeyCache(max_entries=0)


def test_repr_and_stats_contain_no_key_material(cache):
    key = bytes.fromhex("c0ffee" * 10 + "c0ff")
    cache.put(make_cipher(1, key=key), wrapping_key_ref=ARN_A)
    cache.get(uuid.UUID(int=1))
    texts = [repr(cache), str(cache), repr(cache.stats())]
    assert texts[0] == "<DataKeyCache entries=1 ttl=60s failure_ttl=5s max_entries=3>"
    for text in texts:
        assert key.hex() not in text.lower() and "c0ffee" not in text.lower()
        assert repr(key) not in text and key not in text.encode("latin-1", "replace")


def test_concurrent_put_and_get_smoke():
    cache = DataKeyCache(max_entries=16)
    ciphers = [make_cipher(n) for n in range(64)]
    errors = []

    def worker(offset):
        try:
            for i in range(2000):
                cipher = ciphers[(i + offset) % len(ciphers)]
                cache.put(cipher, wrapping_key_ref=ARN_A if i % 2 else ARN_B)
                found = cache.get(ciphers[(i * 7 + offset) % len(ciphers)].dek_id)
                assert found is None or isinstance(found, DataKeyCipher)
                if i % 97 == 0:
                    cache.evict_wrapping_key(ARN_B)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) <= 16
    stats = cache.stats()
    assert stats["hits"] + stats["misses"] == 8 * 2000


# --- the scope a cached data key belongs to -------------------------------------------------------------

SCOPE_A = KeyScope("org-a", "us", "debugger.payload", "session-1")
SCOPE_MOVED = KeyScope("org-b", "us", "debugger.payload", "session-1")


def test_a_cache_hit_is_refused_for_a_row_of_another_scope(cache):
    """A warm cache must not bypass the scope check: a moved row reads `integrity`, as after a cold unwrap."""
    cipher = DataKeyCipher(uuid.UUID(int=1), KEY, scope=SCOPE_A)
    cache.put(cipher, wrapping_key_ref=ARN_A)
    assert cache.get(cipher.dek_id, scope=SCOPE_A) is cipher
    with pytest.raises(ScopeMismatch) as caught:
        cache.get(cipher.dek_id, scope=SCOPE_MOVED)
    assert caught.value.code is ErrorCode.INTEGRITY
    assert (caught.value.key_scope, caught.value.row_scope, caught.value.differences) == (
        SCOPE_A, SCOPE_MOVED, ("organization",))
    assert cache.get(cipher.dek_id, scope=SCOPE_A) is cipher  # the entry stays good for its own rows


def test_a_cached_cipher_without_scope_is_refused_when_a_scope_is_asked(cache):
    cipher = make_cipher()
    cache.put(cipher, wrapping_key_ref=ARN_A)
    with pytest.raises(ScopeMismatch):
        cache.get(cipher.dek_id, scope=SCOPE_A)


def test_a_cached_failure_of_another_scope_is_a_scope_mismatch(cache):
    dek_id = uuid.UUID(int=7)
    cache.put_failure(dek_id, DecryptionError(ErrorCode.KEY_DISABLED), wrapping_key_ref=ARN_A, scope=SCOPE_A)
    with pytest.raises(ScopeMismatch):
        cache.get(dek_id, scope=SCOPE_MOVED)
    with pytest.raises(DecryptionError) as caught:
        cache.get(dek_id, scope=SCOPE_A)
    assert caught.value.code is ErrorCode.KEY_DISABLED and not isinstance(caught.value, ScopeMismatch)
