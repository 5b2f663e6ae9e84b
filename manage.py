#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    from konnect_admin.environment import env_file_value

    # The environment's settings module wins, then .env's (`make run` writes konnect_admin.settings_dev there).
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", env_file_value("DJANGO_SETTINGS_MODULE") or "konnect_admin.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as error:
        # Settings refused, or a KMS without credentials: the message says what to set; a traceback adds nothing.
        if "--traceback" in sys.argv:
            raise
        sys.exit(str(error))


if __name__ == "__main__":
    main()
