"""Delete an organization: shred every data key of it, then delete its data. Dry run unless --yes.

    manage.py delete_organization <id or exact name>          # says what would be removed
    manage.py delete_organization <id> --yes --reason "contract ended"

The organization stays as a tombstone with its audit log (see konnect_admin/organization_lifecycle.py).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from encryption_keys.lifecycle.console import organization_from_argument
from konnect_admin.models import Organization
from konnect_admin.organization_lifecycle import organization_delete, organization_deletion_plan
from konnect_admin.services import SHELL


class Command(BaseCommand):
    help = ("Delete an organization: shred every data key of it first, then delete its rows (its audit log is "
            "kept). Dry run unless --yes.")

    def add_arguments(self, parser):
        parser.add_argument("organization", help="Organization id or exact name.")
        parser.add_argument("--yes", action="store_true", help="Act; without it, only say what would happen.")
        parser.add_argument("--reason", default="", help="Written to the organization's audit log.")

    def handle(self, *args, organization, yes, reason, **options):
        organization = organization_from_argument(organization)
        if organization.state == Organization.State.DELETED:
            raise CommandError(f"{organization.name} ({organization.pk}) was already deleted.")
        if not yes:
            plan = organization_deletion_plan(organization=organization)
            self.stdout.write(f"Would delete {organization.name} ({organization.pk}):")
            self._describe(plan, verb="would become")
            self.stdout.write("Dry run: nothing changed. Re-run with --yes to delete.")
            return
        done = organization_delete(organization=organization, actor=None, via=SHELL, reason=reason)
        self.stdout.write(f"Deleted {organization.name} ({organization.pk}):")
        self._describe(done, verb="became")
        self.stdout.write("The organization remains as a tombstone with its audit log.")

    def _describe(self, deletion, *, verb: str) -> None:
        records = sum(deletion.sealed_records.values())
        self.stdout.write(f"  {deletion.data_keys} data keys shredded first: {records} sealed records {verb} "
                          "unreadable (data_key_shredded), for good")
        self.stdout.write(f"  {deletion.total_rows} rows deleted:")
        for label, count in sorted(deletion.rows.items()):
            self.stdout.write(f"    {label}: {count}")
