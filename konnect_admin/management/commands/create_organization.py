"""Create an organization with its predefined teams and invite its first Organization Admin by e-mail.

    manage.py create_organization --name "Acme" --admin-email alice@acme.example [--region eu]

The invitation e-mail goes through Django's mail (printed by the console backend of `make run`); the link is
printed here too, for the operator to hand over when e-mail is not set up yet.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from konnect_admin.models import Organization, Region
from konnect_admin.organization_lifecycle import organization_create_with_admin
from konnect_admin.services import SHELL


class Command(BaseCommand):
    help = ("Create an organization (predefined teams, audited) and e-mail its first Organization Admin an "
            "invitation link, printed here too.")

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The organization's name (unique).")
        parser.add_argument("--admin-email", required=True, help="Who becomes its first Organization Admin.")
        parser.add_argument("--region", choices=Region.values, default="",
                            help="Its home Konnect region, recorded in the creation event.")
        parser.add_argument("--retention-days", type=int, default=15, help="Days Debugger sessions are kept.")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000",
                            help="Where the app is reached, for the invitation link (default: %(default)s).")

    def handle(self, *args, name, admin_email, region, retention_days, base_url, **options):
        name = name.strip()
        if not name or len(name) > 100:
            raise CommandError("--name must be 1 to 100 characters.")
        try:
            validate_email(admin_email)
        except ValidationError:
            raise CommandError(f"--admin-email: {admin_email!r} is not an e-mail address.") from None
        if Organization.objects.exclude(state=Organization.State.DELETED).filter(name=name).exists():
            raise CommandError(f"An organization named {name!r} exists already.")
        try:
            organization, invitation = organization_create_with_admin(
                name=name, admin_email=admin_email, actor=None, via=SHELL, base_url=base_url,
                retention_days=retention_days, region=region)
        except OSError as error:  # smtplib's errors are OSErrors; nothing was created
            raise CommandError(f"The invitation e-mail could not be sent ({error}); nothing was created.") from None
        self.stdout.write(f"Created organization {organization.name} ({organization.pk}) with its predefined teams.")
        self.stdout.write(f"Invited {invitation.email} as Organization Admin; the link expires "
                          f"{invitation.expires_at:%Y-%m-%d %H:%M %Z}:")
        self.stdout.write(invitation.link)
