"""Settings of the ingest benchmark's gunicorn (bench/debugger_ingest.py): production settings from the
environment bench/load.py's World sets, plus the plaintext twins' ingest endpoints (bench/twins.py)."""

from konnect_admin.settings import *  # noqa: F403

ROOT_URLCONF = "bench.twins"
