"""``python -m bench [--quick] [NAME ...]`` — run benchmarks, then write the one report.

Each benchmark ``bench/<name>.py`` exposes ``run(*, quick: bool) -> dict`` (see ``bench/__init__.py``).
Its result goes to ``bench/results/<name>.json``; afterwards ``bench/report.py`` rewrites
``summary.md`` and ``throughput.svg`` from every stored result. Each benchmark runs in a fresh
interpreter, so one's Django settings, threads or servers never leak into the next.

To add a benchmark, write ``bench/<name>.py`` and add ``"<name>"`` to ``BENCHMARKS``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import numbers
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import RESULTS_DIR, progress
from bench.report import load_results, write_atomically, write_report

BENCHMARKS = [
    "envelope",
    "load",
    "load_batches",
    "rewrap",
    "rewrap_postgres",
    "debugger",
    "debugger_ingest",
    "health_sweep",
    "retention",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FIGURE_KEYS = {"name", "value", "unit", "target", "met", "chart_group"}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = args.names or BENCHMARKS
    if args.in_process:
        for name in names:
            run_benchmark(name, quick=args.quick, results_dir=args.results_dir)
        return 0
    failed = [name for name in names if not _run_isolated(name, quick=args.quick, results_dir=args.results_dir)]
    results = load_results(args.results_dir, BENCHMARKS)
    missing = [name for name in BENCHMARKS if name not in {result["name"] for result in results}]
    summary, chart = write_report(results, args.results_dir, missing=missing)
    progress(f"bench: wrote {summary} and {chart}")
    for result in results:
        for fig in result["figures"]:
            if fig["met"] is False:
                progress(f"bench: TARGET MISSED — {result['name']}: {fig['name']} = {fig['value']:g} {fig['unit']} "
                         f"(target {fig['target']})")
    if failed:
        progress(f"bench: FAILED — {', '.join(failed)}")
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0].strip("`"))
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true", help="a short smoke version that takes seconds")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help=f"default: {RESULTS_DIR}")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)  # how each child is run
    return parser


def _run_isolated(name: str, *, quick: bool, results_dir: Path) -> bool:
    """Run one benchmark in a child interpreter; a stale result is removed first, so failure shows as missing."""
    (results_dir / f"{name}.json").unlink(missing_ok=True)
    progress(f"bench: {name} ({'quick' if quick else 'full'} run)")
    command = [sys.executable, "-m", "bench", "--in-process", "--results-dir", str(results_dir.resolve()), name]
    if quick:
        command.append("--quick")
    return subprocess.run(command, cwd=PROJECT_ROOT, check=False).returncode == 0


def run_benchmark(name: str, *, quick: bool, results_dir: Path) -> dict:
    """Run ``bench.<name>`` here and now, and store its result as ``<results_dir>/<name>.json``."""
    module = importlib.import_module(f"bench.{name}")
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    result = module.run(quick=quick)
    check_result(result, name=name)
    result["run"] = {
        "quick": quick,
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - started, 1),
    }
    result["environment"] = environment()
    results_dir.mkdir(parents=True, exist_ok=True)
    path = write_atomically(results_dir / f"{name}.json", json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    progress(f"bench: {name} done in {result['run']['duration_s']} s → {path}")
    return result


def check_result(result: dict, *, name: str) -> None:
    """Refuse a result the report could misread: wrong name, or a figure missing a key or a number."""
    if result.get("name") != name:
        raise ValueError(f"bench.{name}.run() returned a result named {result.get('name')!r}")
    for fig in result["figures"]:
        if set(fig) != FIGURE_KEYS:
            raise ValueError(f"{name}: figure {fig.get('name')!r} has keys {sorted(fig)}, expected {sorted(FIGURE_KEYS)}")
        if not isinstance(fig["value"], numbers.Real) or isinstance(fig["value"], bool):
            raise ValueError(f"{name}: figure {fig['name']!r} has a non-numeric value {fig['value']!r}")


def environment() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpu": _cpu_model(),
        "cpus": str(os.cpu_count()),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    sys.exit(main())
