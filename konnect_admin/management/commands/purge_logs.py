from django.core.management.base import BaseCommand

from encryption_keys import call_log
from encryption_keys.lifecycle.console import ProgressBar
from konnect_admin.retention import LOGS


class Command(BaseCommand):
    help = (
        "Delete log rows past their retention: the secret-resolution log after SECRET_RESOLUTION_RETENTION_DAYS "
        "(30), the key-usage log after KMS_CALL_LOG_RETENTION_DAYS (90). Dry run unless --yes."
    )

    def add_arguments(self, parser):
        parser.add_argument("--yes", action="store_true", help="Really delete (default: only report what would go).")

    def handle(self, *args, **options):
        call_log.flush()
        for log in LOGS:
            if not options["yes"]:
                plan = log.plan()
                self.stdout.write(f"Would delete {plan.total()} row(s) of the {log.label} older than {log.days()} "
                                  f"day(s), across {_organizations(plan)} organization(s).")
                continue
            bar = ProgressBar(self.stderr, total=0, noun=f"rows of the {log.label}")
            deleted = log.execute(progress=lambda done, total, bar=bar: bar.update(done, total=total))
            bar.finish()
            self.stdout.write(self.style.SUCCESS(
                f"Deleted {deleted.total()} row(s) of the {log.label} older than {log.days()} day(s), "
                f"across {_organizations(deleted)} organization(s)."
            ))
        if not options["yes"]:
            self.stdout.write("Dry run: nothing changed. Run again with --yes to delete.")


def _organizations(rows_by_organization) -> int:
    return sum(1 for organization_id in rows_by_organization if organization_id is not None)
