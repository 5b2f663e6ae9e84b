from django.core.management.base import BaseCommand

from debugger.retention import purge_execute, purge_plan


class Command(BaseCommand):
    help = (
        "Remove Debugger payload captures past 3 days and debug sessions past their retention (15 days by "
        "default), crypto-shredding their data keys first. Dry run unless --yes."
    )

    def add_arguments(self, parser):
        parser.add_argument("--yes", action="store_true", help="Really purge (default: only report what would go).")

    def handle(self, *args, **options):
        if not options["yes"]:
            plan = purge_plan()
            self.stdout.write(
                f"Would remove {plan.sessions} debug session(s) past retention (with {plan.traces} trace(s), "
                f"{plan.logs} log line(s)), {plan.payloads} payload capture(s) and {plan.blobs} expired blob(s), "
                f"shredding at least {plan.data_keys_shredded} data key(s)."
            )
            self.stdout.write("Dry run: nothing changed. Run again with --yes to purge.")
            return
        report = purge_execute(progress=self.progress)
        self.stdout.write(self.style.SUCCESS(
            f"Purged {report.sessions} session(s) ({report.traces} trace(s), {report.logs} log line(s)), "
            f"{report.payloads} payload capture(s) and {report.blobs} blob(s); "
            f"shredded {report.data_keys_shredded} data key(s)."
        ))

    def progress(self, step: str, done: int, total: int) -> None:
        if total and (done == total or done % 50 == 0):
            self.stderr.write(f"  {step}: {done}/{total}")
