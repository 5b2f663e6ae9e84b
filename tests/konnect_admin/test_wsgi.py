"""The WSGI module as gunicorn's workers import it: in a fresh interpreter."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_objects_loaded_at_start_are_frozen_out_of_the_collector():
    probe = ("import gc; import konnect_admin.wsgi as wsgi; "
             "print(gc.get_freeze_count(), gc.is_tracked(wsgi.application), len(gc.get_objects(generation=2)))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "tests.settings",
                                 "KONNECT_ENV_FILE": "/dev/null"})
    assert result.returncode == 0, result.stderr
    frozen, tracked, old = (int(value) if value.isdigit() else value for value in result.stdout.split())
    assert tracked == "True" and frozen > 50_000 and old < frozen // 10
