from django.core.management.base import BaseCommand

from vault.retention import purge_execute, purge_plan, retention_days


class Command(BaseCommand):
    help = (
        "Delete secret-resolution log rows older than SECRET_RESOLUTION_RETENTION_DAYS (30 by default). "
        "Dry run unless --yes."
    )

    def add_arguments(self, parser):
        parser.add_argument("--yes", action="store_true", help="Really delete (default: only report what would go).")

    def handle(self, *args, **options):
        days = retention_days()
        if not options["yes"]:
            plan = purge_plan()
            self.stdout.write(
                f"Would delete {plan.total()} secret-resolution log row(s) older than {days} day(s), "
                f"across {len(plan)} organization(s)."
            )
            self.stdout.write("Dry run: nothing changed. Run again with --yes to delete.")
            return
        deleted = purge_execute(progress=self.progress)
        self.stdout.write(self.style.SUCCESS(
            f"Deleted {deleted.total()} secret-resolution log row(s) older than {days} day(s), "
            f"across {len(deleted)} organization(s)."
        ))

    def progress(self, done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        self.stderr.write(f"  [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
