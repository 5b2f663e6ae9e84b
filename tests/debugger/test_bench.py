"""`bench/debugger.py` quick run, in its own interpreter (it serves the app over HTTP on a temporary SQLite file)."""

import json
import subprocess
import sys
from pathlib import Path

from bench.__main__ import BENCHMARKS, check_result

ROOT = Path(__file__).resolve().parents[2]


def test_quick_debugger_bench_reports_every_figure(tmp_path):
    assert "debugger" in BENCHMARKS
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--in-process", "--results-dir", str(tmp_path), "debugger", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "debugger.json").read_text())
    check_result(result, name="debugger")
    figures = {fig["name"]: fig for fig in result["figures"]}
    ingest = figures["Encrypted ingest ÷ plaintext ingest"]
    assert ingest["target"] == "≥ 0.85×" and ingest["met"] == (ingest["value"] >= 0.85)
    page = figures["Warm encrypted page ÷ plaintext page (time)"]
    assert page["target"] == "≤ 1.1×" and page["met"] == (page["value"] <= 1.1)
    minimal = figures["Warm encrypted page ÷ minimal page (time)"]
    assert minimal["target"] == "≤ 2.0×" and minimal["met"] == (minimal["value"] <= 2.0)
    assert all(fig["value"] > 0 for fig in result["figures"])
    # The run checked its own honesty: envelopes on one side, plaintext on the other, one Decrypt per cold page.
    assert result["checks"]["kms_decrypts_per_cold_page"] == 1
    assert result["checks"]["traces_per_session_for_pages"] >= 50
