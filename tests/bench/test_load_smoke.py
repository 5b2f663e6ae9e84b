"""A short run of bench/load.py (the full one is in `make bench`): gunicorn on PostgreSQL, data planes
posting through a CMEK replacement and a KMS outage, then every acknowledged write checked."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["load", "load_batches"])  # one trace per request; batches of 20
def test_quick_load_run_loses_nothing(tmp_path, name):
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--in-process", "--quick", "--results-dir", str(tmp_path), name],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / f"{name}.json").read_text())
    figures = {figure["name"]: figure for figure in report["figures"]}
    assert figures["acknowledged writes"]["value"] > 0
    assert report["checks"]["lost"] == 0 and report["checks"]["mismatched"] == 0
    assert report["checks"]["refused_stored"] == 0
    assert report["unexpected_statuses"] == {}
    assert all(figure["met"] is not False for figure in report["figures"]), report["figures"]
    assert any("KMS server started again" in event for event in report["events"])
