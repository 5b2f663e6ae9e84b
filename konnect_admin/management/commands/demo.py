from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from konnect_admin.demo import DEMO_PASSWORD, demo_build


class Command(BaseCommand):
    help = "Create a fresh demo database (two organizations, a user per role) and serve the app on 127.0.0.1:8000."

    def add_arguments(self, parser):
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--no-serve", action="store_true", help="Build the demo data and exit.")
        parser.add_argument(
            "--reset-database", action="store_true", help="Allow wiping a non-SQLite database (it is flushed)."
        )

    def handle(self, *args, **options):
        self.reset_database(allow_flush=options["reset_database"])
        call_command("migrate", verbosity=0, interactive=False)
        demo = demo_build(log=lambda message: self.stdout.write(message))
        self.stdout.write(self.style.SUCCESS(f"\nDemo logins (password for all: {DEMO_PASSWORD}):"))
        for email, label in demo.logins:
            self.stdout.write(f"  {email:<24} {label}")
        if not options["no_serve"]:
            self.stdout.write(f"\nServing on http://{options['addrport']}/")
            call_command("runserver", options["addrport"], use_reloader=False)

    def reset_database(self, *, allow_flush: bool) -> None:
        if connection.vendor == "sqlite":
            path = Path(settings.DATABASES["default"]["NAME"])
            connection.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        if not allow_flush:
            raise CommandError(
                "The demo builds a fresh database. DATABASE_URL points at a non-SQLite database: "
                "pass --reset-database to flush it, or unset DATABASE_URL to use the embedded SQLite file."
            )
        call_command("migrate", verbosity=0, interactive=False)
        call_command("flush", interactive=False, verbosity=0)
