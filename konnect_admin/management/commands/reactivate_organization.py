"""Reactivate an organization (audited in its log as done via manage.py).

    manage.py reactivate_organization <id or exact name> [--reason "…"]
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from encryption_keys.lifecycle.console import organization_from_argument
from konnect_admin.services import SHELL, organization_reactivate


class Command(BaseCommand):
    help = "Reactivate an organization; written to its audit log."

    def add_arguments(self, parser):
        parser.add_argument("organization", help="Organization id or exact name.")
        parser.add_argument("--reason", default="", help="Written to the organization's audit log.")

    def handle(self, *args, organization, reason, **options):
        organization = organization_from_argument(organization)
        try:
            changed = organization_reactivate(organization=organization, actor=None, reason=reason, via=SHELL)
        except ValueError as error:
            raise CommandError(str(error)) from None
        state = "reactivated" if changed else "was already active: nothing changed"
        self.stdout.write(f"{organization.name} ({organization.pk}) {state}.")
