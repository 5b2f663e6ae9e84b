"""The base of `suspend_organization` and `reactivate_organization`: one service call, audited as via manage.py."""

from __future__ import annotations

from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError

from encryption_keys.lifecycle.console import organization_from_argument
from konnect_admin.services import SHELL


class OrganizationStateCommand(BaseCommand):
    service: Callable[..., bool]  # organization_suspend or organization_reactivate
    changed_word = ""  # "suspended"
    unchanged = ""  # "was already suspended"

    def add_arguments(self, parser):
        parser.add_argument("organization", help="Organization id or exact name.")
        parser.add_argument("--reason", default="", help="Written to the organization's audit log.")

    def handle(self, *args, organization, reason, **options):
        organization = organization_from_argument(organization)
        try:
            changed = type(self).service(organization=organization, actor=None, reason=reason, via=SHELL)
        except ValueError as error:
            raise CommandError(str(error)) from None
        state = self.changed_word if changed else f"{self.unchanged}: nothing changed"
        self.stdout.write(f"{organization.name} ({organization.pk}) {state}.")
