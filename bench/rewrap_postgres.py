"""The key-replacement benchmark of ``bench/rewrap.py`` on PostgreSQL, the production database.

Needs the PostgreSQL server of ``bench.POSTGRES_SERVER`` (as the load benchmark does); it works in a
scratch database of its own and drops it afterwards.
"""

from __future__ import annotations

from bench import rewrap

NAME = "rewrap_postgres"


def run(*, quick: bool) -> dict:
    return rewrap.run(quick=quick, database="postgres")
