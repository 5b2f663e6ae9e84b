"""Background work of the debugger, on Django's Tasks framework; every task is safe to run twice."""

from __future__ import annotations

from dataclasses import asdict

from django.tasks import task

from debugger import partitions
from debugger.ingest import sessions_expire
from debugger.retention import purge_execute


@task
def expire_sessions() -> int:
    """Mark active sessions past their end as timed out (scheduled every minute)."""
    return sessions_expire()


@task
def purge_debugger_data() -> dict:
    """Delete sessions, traces and payloads past retention and shred their data keys (scheduled daily)."""
    report = asdict(purge_execute())
    report.pop("by_organization")
    return report


@task
def ensure_debugger_partitions() -> list[str]:
    """Create the coming days' partitions of payloads, logs and spans on PostgreSQL (scheduled hourly)."""
    return partitions.ensure()
