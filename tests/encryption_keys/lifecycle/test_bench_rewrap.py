"""`bench/rewrap.py` quick run, in its own interpreter (it configures Django on a temporary SQLite file, or,
as `rewrap_postgres`, on a scratch database of the PostgreSQL server the suite and the load benchmark use)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import check_result

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", ["rewrap", "rewrap_postgres"])
def test_quick_rewrap_bench_reports_every_figure(tmp_path, name):
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--in-process", "--results-dir", str(tmp_path), name, "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # The run itself checked that every record reveals its original plaintext after each contender.
    assert ("after 2 re-wraps (and a warm-up) through the worker: all 5,000 records reveal their original plaintext"
            in done.stderr)
    assert "after full re-encryption: all 5,000 records reveal their original plaintext" in done.stderr
    result = json.loads((tmp_path / f"{name}.json").read_text())
    check_result(result, name=name)
    figures = {fig["name"]: fig for fig in result["figures"]}
    calls = figures["re-wrap: KMS ReEncrypt calls per pass (most in any pass)"]
    assert (calls["value"], calls["met"]) == (10, True)
    passes = result["rewrap_pass_seconds"]
    assert len(passes) == 2 and min(passes) <= figures["re-wrap (ReEncrypt per data key): time, median of 2 passes"][
        "value"] <= max(passes)
    # The re-wraps ran in the db_worker process, timed by the queue from enqueue to finished, the wait included.
    assert result["parameters"]["rewrap_runs_in"].startswith("manage.py db_worker")
    waits = result["rewrap_pass_queue_wait_seconds"]
    assert len(waits) == 2 and all(0 < wait < run for wait, run in zip(waits, passes, strict=True))
    assert figures["re-wrap: records rewritten"] == {**figures["re-wrap: records rewritten"], "value": 0, "met": True}
    assert figures["full re-encryption: records rewritten"]["value"] == 5000
    speedup = figures["re-wrap speed-up over full re-encryption"]
    assert speedup["met"] == (speedup["value"] >= 100) and speedup["value"] > 1
    ttl = figures["revocation latency, DATAKEY_CACHE_TTL = 2 s (cache expiry, worst case)"]
    assert 1.9 <= ttl["value"] <= 3
    assert figures["revocation latency, DATAKEY_CACHE_TTL = 0"]["value"] < 1
    assert ("PostgreSQL" if name == "rewrap_postgres" else "SQLite") in result["parameters"]["database"]
