"""`bench/health_sweep.py` quick run, in its own interpreter (it configures Django on a temporary SQLite file and
starts the local KMS in a child process): every figure is reported, and the sweep made one KMS call per key."""

import json
import math
import subprocess
import sys
from pathlib import Path

from bench.__main__ import BENCHMARKS, check_result

ROOT = Path(__file__).resolve().parents[2]
ORGANIZATIONS = 40  # bench.health_sweep.QUICK
PLATFORM_KEYS = 1  # bench.kms_process.KmsProcess creates the platform key of one region


def test_quick_health_sweep_bench_reports_every_figure_and_one_call_per_key(tmp_path):
    assert "health_sweep" in BENCHMARKS  # run by `make bench`
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--in-process", "--results-dir", str(tmp_path), "health_sweep", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "health_sweep.json").read_text())
    check_result(result, name="health_sweep")
    figures = {fig["name"]: fig for fig in result["figures"]}
    keys = ORGANIZATIONS + PLATFORM_KEYS

    assert figures["keys swept (linked customer keys + platform keys)"]["value"] == keys
    calls = figures["KMS calls made by the sweep"]
    assert (calls["value"], calls["target"], calls["met"]) == (keys, f"= {keys} (one DescribeKey per key)", True)
    assert f"{keys} KMS calls for {keys} keys in" in done.stderr

    median = figures["median latency of one DescribeKey (from this process, one at a time)"]["value"]
    concurrency = figures["configured concurrency (KEY_HEALTH_SWEEP_CONCURRENCY)"]["value"]
    bound = figures["bound: 1.5 × keys × median ÷ concurrency"]["value"]
    elapsed = figures["sweep: time"]["value"]
    assert median >= 50  # the local KMS answers 50 ms late (the simulated network round trip)
    assert concurrency == 16  # the default setting
    assert math.isclose(bound, 1.5 * keys * median / 1000 / concurrency, rel_tol=1e-9)
    ratio = figures["sweep time ÷ bound"]
    assert math.isclose(ratio["value"], elapsed / bound, rel_tol=1e-9)
    assert ratio["met"] == figures["sweep: time"]["met"] == (elapsed <= bound)
    # Many calls were in flight: one at a time, the sweep would take keys × median at least.
    assert elapsed < keys * median / 1000 / 2
    assert result["priming_sweep"]["keys"] == ORGANIZATIONS
