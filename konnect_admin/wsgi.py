"""WSGI entry point (gunicorn konnect_admin.wsgi)."""

import gc
import os

from django.core.wsgi import get_wsgi_application

from konnect_admin.environment import env_file_value

# As manage.py: the environment's settings module wins, then .env's, then production's.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", env_file_value("DJANGO_SETTINGS_MODULE") or "konnect_admin.settings")
application = get_wsgi_application()
# What is loaded by now (Django, the apps, their models: ~90k objects) lives as long as the worker: kept out of
# the cyclic collector's walks. A trace batch holds thousands of objects across young collections; promoted,
# they set off a full collection every few batches, and each walked all of these (bench.ingest_profile).
gc.freeze()
