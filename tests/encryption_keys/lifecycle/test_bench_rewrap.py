"""`bench/rewrap.py` quick run, in its own interpreter (it configures Django on a temporary SQLite file)."""

import json
import subprocess
import sys
from pathlib import Path

from bench.__main__ import check_result

ROOT = Path(__file__).resolve().parents[3]


def test_quick_rewrap_bench_reports_every_figure(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--in-process", "--results-dir", str(tmp_path), "rewrap", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # The run itself checked that every record reveals its original plaintext after each contender.
    assert "after re-wrap: all 5,000 records reveal their original plaintext" in done.stderr
    assert "after full re-encryption: all 5,000 records reveal their original plaintext" in done.stderr
    result = json.loads((tmp_path / "rewrap.json").read_text())
    check_result(result, name="rewrap")
    figures = {fig["name"]: fig for fig in result["figures"]}
    assert (figures["re-wrap: KMS ReEncrypt calls"]["value"], figures["re-wrap: KMS ReEncrypt calls"]["met"]) == (10, True)
    assert figures["re-wrap: records rewritten"] == {**figures["re-wrap: records rewritten"], "value": 0, "met": True}
    assert figures["full re-encryption: records rewritten"]["value"] == 5000
    speedup = figures["re-wrap speed-up over full re-encryption"]
    assert speedup["met"] == (speedup["value"] >= 100) and speedup["value"] > 1
    ttl = figures["revocation latency, DATAKEY_CACHE_TTL = 2 s (cache expiry, worst case)"]
    assert 1.9 <= ttl["value"] <= 3
    assert figures["revocation latency, DATAKEY_CACHE_TTL = 0"]["value"] < 1
    assert result["job"] == {"state": "completed", "done": 10, "failed": 0}
