"""`bench/retention.py` quick run, in its own interpreter, on a scratch database of the PostgreSQL server."""

import json
import subprocess
import sys
from pathlib import Path

from bench.__main__ import BENCHMARKS, check_result

ROOT = Path(__file__).resolve().parents[2]


def test_quick_retention_bench_expires_three_days_each_way(tmp_path):
    assert "retention" in BENCHMARKS
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--in-process", "--results-dir", str(tmp_path), "retention", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "retention.json").read_text())
    check_result(result, name="retention")
    figures = {fig["name"]: fig for fig in result["figures"]}
    ratio = figures["DELETE + VACUUM ÷ partition drop (time)"]
    assert ratio["target"] == "≥ 50×" and ratio["met"] == (ratio["value"] >= 50)
    # Every contender removed the same rows and shredded the same keys (the bench refuses otherwise), without KMS.
    rows = result["parameters"]["total_payload_rows"]
    for contender in ("drop", "delete_orm", "delete"):
        check = result["checks"][contender]
        assert check["payloads"] == rows // 2 and check["payloads_left"] == rows // 2
        assert check["data_keys_shredded"] == figures["Data keys shredded (each run)"]["value"] > 0
        assert check["kms_calls"] == 0
