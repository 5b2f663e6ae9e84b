"""Runs last (conftest orders it): no planted plaintext in any log line of the whole session, at any level."""

from tests import leaks


def test_no_planted_plaintext_reached_any_log_line():
    assert leaks.planted(), "no test planted a plaintext: this check would prove nothing"
    assert leaks.capture.lines, "the session log capture saw no records at all"
    found = leaks.leaks()
    assert not found, "plaintext in logs:\n" + "\n".join(f"{secret!r} in {line[:300]!r}" for secret, line in found[:20])
