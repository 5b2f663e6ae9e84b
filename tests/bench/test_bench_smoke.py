"""Smoke test of the bench harness: a quick envelope run, its JSON result, and the report built from it."""

import json
import math
import xml.etree.ElementTree as ET

import pytest

import bench.envelope
from bench.__main__ import check_result, main
from bench.report import write_report

SVG = "{http://www.w3.org/2000/svg}"
OURS = "Konnect envelope v2"
FERNET = "django-encrypted-model-fields (Fernet)"
AWS_SDK = "AWS Encryption SDK (caching CMM)"
ENCRYPTED = [OURS, FERNET, AWS_SDK]
EXPECTED_FIGURES = {
    "plaintext (encode/decode only): round trips/s",
    *(f"{label}: round trips/s" for label in ENCRYPTED),
    *(f"{label}: µs added per round trip over plaintext" for label in ENCRYPTED),
    *(f"{label}: stored bytes per 4 KiB value" for label in ENCRYPTED),
    *(f"{label}: overhead per value" for label in ENCRYPTED),
    f"{OURS} throughput ÷ {FERNET}",
    f"{OURS} throughput ÷ {AWS_SDK}",
}


@pytest.fixture(scope="module")
def envelope_result():
    result = bench.envelope.run(quick=True)
    return json.loads(json.dumps(result))  # what is stored is what the report reads


def figures_by_name(result):
    return {fig["name"]: fig for fig in result["figures"]}


def test_every_figure_is_there_as_a_positive_number(envelope_result):
    check_result(envelope_result, name="envelope")
    names = [fig["name"] for fig in envelope_result["figures"]]
    assert sorted(names) == sorted(EXPECTED_FIGURES)
    for fig in envelope_result["figures"]:
        assert isinstance(fig["value"], int | float), fig
        assert math.isfinite(fig["value"]) and fig["value"] > 0, fig
        assert (fig["target"] is None) == (fig["met"] is None), fig


def test_our_overhead_is_exactly_the_v2_header_and_tag(envelope_result):
    figures = figures_by_name(envelope_result)
    overhead = figures[f"{OURS}: overhead per value"]
    assert (overhead["value"], overhead["unit"], overhead["target"], overhead["met"]) == (45, "bytes", "≤ 48 bytes", True)
    assert figures[f"{OURS}: stored bytes per 4 KiB value"]["value"] == 4096 + 45


def test_targets_are_judged_from_the_measured_ratios(envelope_result):
    figures = figures_by_name(envelope_result)
    vs_fernet = figures[f"{OURS} throughput ÷ {FERNET}"]
    vs_sdk = figures[f"{OURS} throughput ÷ {AWS_SDK}"]
    assert (vs_fernet["target"], vs_fernet["met"]) == ("≥ 5×", vs_fernet["value"] >= 5)
    assert (vs_sdk["target"], vs_sdk["met"]) == ("≥ 20×", vs_sdk["value"] >= 20)


def test_both_key_caches_stayed_warm(envelope_result):
    assert envelope_result["warm_cache_check"]["konnect_cache_misses"] == 0
    assert envelope_result["warm_cache_check"]["aws_sdk_backing_cmm_calls"] <= 2


def test_report_has_a_row_per_figure_and_a_well_formed_chart(envelope_result, tmp_path):
    summary_path, chart_path = write_report([envelope_result], tmp_path, missing=["load"])

    summary = summary_path.read_text(encoding="utf-8")
    rows = [line for line in summary.splitlines() if line.startswith("| envelope |")]
    assert len(rows) == len(envelope_result["figures"])
    for fig, row in zip(envelope_result["figures"], rows, strict=True):
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        expected_met = {None: "—", True: "yes", False: "**no**"}[fig["met"]]
        assert cells[1] == fig["name"]
        assert cells[3:] == [fig["unit"], fig["target"] or "—", expected_met]
    assert "`load` (not run, or it failed)" in summary

    chart = ET.parse(chart_path).getroot()  # noqa: S314 - the file we just wrote, not untrusted input
    assert chart.tag == f"{SVG}svg"
    charted = [fig for fig in envelope_result["figures"] if fig["chart_group"]]
    bars = [rect for rect in chart.iter(f"{SVG}rect") if rect.find(f"{SVG}title") is not None]
    assert len(charted) == len(bars) == 3
    widest = max(fig["value"] for fig in charted)
    widths = [float(bar.get("width")) for bar in bars]
    assert widths == [pytest.approx(max(widths) * fig["value"] / widest, abs=0.1) for fig in charted]
    assert not list(tmp_path.glob("*.tmp"))


def test_harness_runs_a_benchmark_in_a_child_and_replaces_its_stale_result(tmp_path):
    (tmp_path / "envelope.json").write_text('{"name": "envelope", "figures": [], "stale": true}')

    assert main(["--quick", "--results-dir", str(tmp_path), "envelope"]) == 0

    stored = json.loads((tmp_path / "envelope.json").read_text(encoding="utf-8"))
    assert "stale" not in stored
    assert stored["run"]["quick"] is True
    assert sorted(fig["name"] for fig in stored["figures"]) == sorted(EXPECTED_FIGURES)
    assert "QUICK smoke run" in (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert ET.parse(tmp_path / "throughput.svg").getroot().tag == f"{SVG}svg"  # noqa: S314 - our own output


def test_harness_refuses_an_unknown_benchmark(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--quick", "nonesuch"])
    assert exit_info.value.code == 2
    assert "unknown benchmark nonesuch" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("fig", "problem"),
    [
        ({"name": "x", "value": 1, "unit": "ops/s", "target": None, "met": None}, "has keys"),
        ({"name": "x", "value": "fast", "unit": "ops/s", "target": None, "met": None, "chart_group": None}, "non-numeric"),
    ],
)
def test_a_malformed_figure_is_refused(fig, problem):
    with pytest.raises(ValueError, match=problem):
        check_result({"name": "envelope", "figures": [fig]}, name="envelope")
