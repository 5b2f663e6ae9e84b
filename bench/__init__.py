"""Benchmarks run by `make bench` (`python -m bench`); see bench/__main__.py for the harness.

Every benchmark module exposes ``run(*, quick: bool) -> dict`` returning::

    {"name": "envelope", "figures": [figure(...), ...], ...any details worth keeping...}

This package holds what they share: the figure record, progress output, and round-robin timing.
The machine is noisy, so nothing is compared across runs: contenders are timed in alternating rounds
of one run and compared by the median of their per-round ratios.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: The PostgreSQL server benchmarks make their scratch databases on (the one CI and these machines run).
POSTGRES_SERVER = "postgres://postgres@127.0.0.1:5432"


def progress(message: str) -> None:
    """One line of progress on stderr (stdout stays free for whoever pipes us)."""
    print(message, file=sys.stderr, flush=True)


def figure(
    name: str,
    value: float,
    unit: str,
    *,
    target: str | None = None,
    met: bool | None = None,
    chart_group: str | None = None,
) -> dict:
    """One reported figure. ``target`` is human text ("≥ 5×"); ``met`` is None when there is no target."""
    if (target is None) != (met is None):
        raise ValueError(f"{name}: a figure has both a target and a verdict, or neither")
    return {"name": name, "value": value, "unit": unit, "target": target, "met": met, "chart_group": chart_group}


@dataclass(frozen=True, slots=True)
class Contender:
    """One thing being timed: ``operation`` is called with no arguments, many times."""

    key: str
    label: str
    operation: Callable[[], object]


def time_calls(operation: Callable[[], object], count: int) -> float:
    """Seconds taken by ``count`` calls, with the garbage collector paused (as ``timeit`` does)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in itertools.repeat(None, count):
            operation()
        return time.perf_counter() - start
    finally:
        if gc_was_enabled:
            gc.enable()


def calls_per_batch(operation: Callable[[], object], *, seconds: float) -> int:
    """How many calls take about ``seconds``; the probing doubles as warm-up."""
    count = 1
    while True:
        elapsed = time_calls(operation, count)
        if elapsed >= seconds / 4:
            return max(1, round(count * seconds / elapsed))
        count *= 2


def measure_rounds(contenders: Sequence[Contender], *, rounds: int, batch_seconds: float) -> list[dict[str, float]]:
    """Calls per second of each contender, one dict per round.

    Each round times one batch of every contender, starting one place later each round, so slow drift
    of the machine (frequency scaling, neighbours) is shared out rather than charged to one contender.
    """
    batches = {c.key: calls_per_batch(c.operation, seconds=batch_seconds) for c in contenders}
    samples = []
    for index in range(rounds):
        shift = index % len(contenders)
        row = {}
        for contender in [*contenders[shift:], *contenders[:shift]]:
            count = batches[contender.key]
            row[contender.key] = count / time_calls(contender.operation, count)
        samples.append(row)
        progress(f"  round {index + 1}/{rounds}: " + ", ".join(f"{key} {rate:,.0f}/s" for key, rate in row.items()))
    return samples


def measure_interleaved(contenders: Sequence[Contender], *, rounds: int, calls: int) -> list[dict[str, float]]:
    """Calls per second of each contender, one dict per round, for operations of milliseconds or more (an HTTP page).

    Within a round the contenders take turns call by call (A B C, then B C A, ...), each call timed alone, and
    a contender's rate is one over the median of its `calls` times: a neighbour's burst on the machine lands on
    one or two calls of whichever contender ran then and moves no median, where a batch timed as a whole
    (`measure_rounds`) charges it to one contender's whole round. The garbage collector runs between rounds,
    never during one (it would charge one contender for another's garbage)."""
    samples = []
    for index in range(rounds):
        times: dict[str, list[float]] = {c.key: [] for c in contenders}
        gc.collect()
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            for call in range(calls):
                shift = (index + call) % len(contenders)
                for contender in [*contenders[shift:], *contenders[:shift]]:
                    start = time.perf_counter()
                    contender.operation()
                    times[contender.key].append(time.perf_counter() - start)
        finally:
            if gc_was_enabled:
                gc.enable()
        row = {key: 1 / statistics.median(values) for key, values in times.items()}
        samples.append(row)
        progress(f"  round {index + 1}/{rounds}: " + ", ".join(f"{key} {rate:,.1f}/s" for key, rate in row.items()))
    return samples


def median_rate(samples: Sequence[dict[str, float]], key: str) -> float:
    return statistics.median(row[key] for row in samples)


def median_ratio(samples: Sequence[dict[str, float]], numerator: str, denominator: str) -> float:
    """Median over rounds of numerator ÷ denominator, each ratio taken within one round."""
    return statistics.median(row[numerator] / row[denominator] for row in samples)


@contextlib.contextmanager
def postgres_database(label: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one run, dropped afterwards; yields its URL.

    Named after the benchmark and this process, so two runs on one server never drop each other's.
    """
    import psycopg

    name = f"konnect_bench_{label}_{os.getpid()}"
    with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_SERVER}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
