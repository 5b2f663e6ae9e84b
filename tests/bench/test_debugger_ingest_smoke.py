"""A quick run of bench/debugger_ingest.py (the full one is in `make bench`): gunicorn on PostgreSQL, one trace per
request and batches of 50, encrypted and plaintext twins, and the COPY floor, with its own storage checks."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_ingest_bench_reports_every_figure(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--in-process", "--quick", "--results-dir", str(tmp_path), "debugger_ingest"],
        cwd=ROOT, capture_output=True, text=True, timeout=400,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "debugger_ingest.json").read_text())
    figures = {figure["name"]: figure for figure in report["figures"]}
    for label in ("1 trace/request, encrypted", "50 traces/request, encrypted", "50 traces/request, plaintext twins"):
        assert figures[f"Ingest, {label}: traces/s"]["value"] > 0
    assert figures["Ingest, COPY floor (50 traces/transaction, psycopg, no app): traces/s"]["value"] > 0
    for name, target in (("Batched (50/request) ÷ single-trace ingest, encrypted", "≥ 10×"),
                         ("Batched encrypted ingest ÷ COPY floor", "≥ 0.3×"),
                         ("Batched ingest, encrypted ÷ plaintext twins", "≥ 0.9×")):
        assert figures[name]["target"] == target
    # The run checked itself: every acknowledged trace stored, envelopes on one side, plaintext on the other.
    stored = report["checks"]["traces_stored"]
    assert stored["batch_encrypted"] > 0 and stored["batch_plaintext"] > 0
    assert report["checks"]["payload_rows_encrypted_batch"] > 0
