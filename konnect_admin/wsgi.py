"""WSGI entry point (gunicorn konnect_admin.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from konnect_admin.environment import env_file_value

# As manage.py: the environment's settings module wins, then .env's, then production's.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", env_file_value("DJANGO_SETTINGS_MODULE") or "konnect_admin.settings")
application = get_wsgi_application()
