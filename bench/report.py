"""The one bench report: ``summary.md`` (every figure, its target, met or not) and ``throughput.svg``.

Both are built from the benchmarks' JSON results only, so the report can be rewritten without
re-running anything. The chart is hand-written SVG: one block of horizontal bars per ``chart_group``,
each block on its own linear scale starting at zero.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

SUMMARY_FILE = "summary.md"
CHART_FILE = "throughput.svg"

# chart geometry, in px
WIDTH = 900
LABEL_WIDTH = 300
BAR_AREA = 440
BAR_HEIGHT = 22
BAR_GAP = 8
TITLE_HEIGHT = 34
MARGIN = 16
BAR_COLOURS = ("#2f6fdf", "#e0822b", "#3a9d5d", "#b54ac4", "#c23b3b", "#6b6b6b")


def load_results(results_dir: Path, names: Iterable[str]) -> list[dict]:
    """The stored result of each named benchmark that has one, in the order given."""
    results = []
    for name in names:
        path = results_dir / f"{name}.json"
        if path.exists():
            results.append(json.loads(path.read_text(encoding="utf-8")))
    return results


def write_report(results: Sequence[dict], out_dir: Path, *, missing: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write summary.md and throughput.svg into ``out_dir``; ``missing`` names benchmarks without a result."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = write_atomically(out_dir / SUMMARY_FILE, render_summary(results, missing=missing))
    chart = write_atomically(out_dir / CHART_FILE, render_chart(results))
    return summary, chart


def write_atomically(path: Path, text: str) -> Path:
    """Write through ``<path>.tmp`` and rename, so a reader never sees half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path


# --- summary.md ----------------------------------------------------------------------------------------


def render_summary(results: Sequence[dict], *, missing: Sequence[str] = ()) -> str:
    lines = ["# Benchmark summary", ""]
    missed = [(r["name"], f["name"]) for r in results for f in r["figures"] if f["met"] is False]
    met = sum(1 for r in results for f in r["figures"] if f["met"] is True)
    lines.append(f"Targets: {met} met, {len(missed)} missed.")
    lines += [f"- **missed**: {_cell(benchmark)} — {_cell(name)}" for benchmark, name in missed]
    lines += [f"- **no result**: `{name}` (not run, or it failed)" for name in missing]
    lines += ["", "| benchmark | figure | value | unit | target | met |", "|---|---|---:|---|---|---|"]
    for result in results:
        for fig in result["figures"]:
            lines.append(
                f"| {_cell(result['name'])} | {_cell(fig['name'])} | {format_value(fig['value'])} | "
                f"{_cell(fig['unit'])} | {_cell(fig['target'] or '—')} | {_verdict(fig['met'])} |"
            )
    lines += ["", f"![Throughput comparisons]({CHART_FILE})", ""]
    for result in results:
        lines += _run_notes(result)
    return "\n".join(lines).rstrip() + "\n"


def _run_notes(result: dict) -> list[str]:
    lines = [f"## {result['name']}", ""]
    if result.get("description"):
        lines += [result["description"], ""]
    run = result.get("run", {})
    if run:
        mode = "QUICK smoke run: figures are indicative only" if run.get("quick") else "full run"
        lines.append(f"- {mode}; started {run.get('started_at', '?')}, took {run.get('duration_s', 0):.1f} s")
    environment = result.get("environment", {})
    if environment:
        lines.append("- " + ", ".join(f"{key} {value}" for key, value in environment.items()))
    if result.get("versions"):
        lines.append("- " + ", ".join(f"{package} {version}" for package, version in result["versions"].items()))
    lines += [f"- {note}" for note in result.get("notes", [])]
    return [*lines, ""]


def format_value(value: float) -> str:
    if isinstance(value, int) or (abs(value) >= 1000 and value == int(value)):
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _verdict(met: bool | None) -> str:
    return "—" if met is None else ("yes" if met else "**no**")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# --- throughput.svg ------------------------------------------------------------------------------------


def render_chart(results: Sequence[dict]) -> str:
    groups: dict[str, list[tuple[str, dict]]] = {}
    for result in results:
        for fig in result["figures"]:
            if fig.get("chart_group"):
                groups.setdefault(fig["chart_group"], []).append((result["name"], fig))
    body: list[str] = []
    y = MARGIN
    for title, bars in groups.items():
        body.append(_text(MARGIN, y + 18, title, weight="bold"))
        y += TITLE_HEIGHT
        scale = max(fig["value"] for _, fig in bars) or 1
        for index, (_, fig) in enumerate(bars):
            body += _bar(y, fig, scale, BAR_COLOURS[index % len(BAR_COLOURS)])
            y += BAR_HEIGHT + BAR_GAP
        y += MARGIN
    if not groups:
        body.append(_text(MARGIN, y + 18, "No throughput figures yet."))
        y += TITLE_HEIGHT + MARGIN
    height = y + MARGIN
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="system-ui, sans-serif" font-size="13">',
        "<title>Throughput comparisons (linear scale per block, higher is better)</title>",
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        *body,
        "</svg>",
        "",
    ])


def _bar(y: int, fig: dict, scale: float, colour: str) -> list[str]:
    width = max(1.0, BAR_AREA * fig["value"] / scale)
    x = MARGIN + LABEL_WIDTH
    label = _label_for_bar(fig["name"])
    return [
        _text(x - 8, y + 16, label, anchor="end"),
        f'<rect x="{x}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}" fill="{colour}">'
        f"<title>{escape(fig['name'])}: {format_value(fig['value'])} {escape(fig['unit'])}</title></rect>",
        _text(x + width + 6, y + 16, f"{format_value(fig['value'])} {fig['unit']}"),
    ]


def _label_for_bar(name: str) -> str:
    """A figure named "<contender>: <measure>" is labelled by its contender; the group title names the measure."""
    contender, _, _measure = name.partition(": ")
    return contender


def _text(x: float, y: float, text: str, *, anchor: str = "start", weight: str = "normal") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor={quoteattr(anchor)} font-weight={quoteattr(weight)}>'
        f"{escape(text)}</text>"
    )
