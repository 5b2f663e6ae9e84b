"""Settings of the key-replacement benchmark, for its own process and the `db_worker` it starts: the test
settings (local KMS, tests.testapp's SealedNote) on the database task queue, without the settle wait.

`KEY_REWRAP_SETTLE_SECONDS` is how long a re-wrap run waits after the switch for data keys that another web
process made under the old key before it saw the new one. In the benchmark the measuring process is the only
writer and it writes nothing during a pass, so there is nothing to wait for: the figure is the re-wrap work
plus the queue, not a fixed 2 s pause.
"""

import os

os.environ["TASKS_BACKEND"] = "db"  # what production runs: the web side enqueues, `manage.py db_worker` runs

from tests.settings import *  # noqa: E402, F403

KEY_REWRAP_SETTLE_SECONDS = 0
