"""For tests that take the schema back to an earlier state and forward again."""

from contextlib import contextmanager

from django.db import connection
from django.db.migrations.executor import MigrationExecutor


@contextmanager
def schema_at(targets):
    """Migrate to `targets` and yield that state's historical apps; afterwards apply every migration again,
    since later tests need today's schema."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    try:
        yield executor.loader.project_state(targets).apps
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
