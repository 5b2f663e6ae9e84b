"""bench/load.py with batches: each data-plane request carries 20 traces to `…/trace-batches`, through the same
CMEK replacement and KMS outage, with the same checks (every acknowledged trace stored and revealing as sent,
nothing of a refused batch left behind)."""

from __future__ import annotations

from bench import load

NAME = "load_batches"
BATCH = 20


def run(*, quick: bool) -> dict:
    return load.run(quick=quick, batch=BATCH, name=NAME)
