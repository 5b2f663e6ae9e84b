"""Suspend an organization (audited in its log as done via manage.py).

    manage.py suspend_organization <id or exact name> [--reason "…"]
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from encryption_keys.lifecycle.console import organization_from_argument
from konnect_admin.services import SHELL, organization_suspend


class Command(BaseCommand):
    help = "Suspend an organization; written to its audit log."

    def add_arguments(self, parser):
        parser.add_argument("organization", help="Organization id or exact name.")
        parser.add_argument("--reason", default="", help="Written to the organization's audit log.")

    def handle(self, *args, organization, reason, **options):
        organization = organization_from_argument(organization)
        try:
            changed = organization_suspend(organization=organization, actor=None, reason=reason, via=SHELL)
        except ValueError as error:
            raise CommandError(str(error)) from None
        state = "suspended" if changed else "was already suspended: nothing changed"
        self.stdout.write(f"{organization.name} ({organization.pk}) {state}.")
