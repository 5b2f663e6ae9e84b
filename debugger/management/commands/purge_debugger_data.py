from django.core.management.base import BaseCommand

from debugger.retention import purge_execute, purge_plan
from encryption_keys.lifecycle.console import ProgressBar


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
        bar: ProgressBar | None = None

        def progress(step: str, done: int, total: int) -> None:
            nonlocal bar
            if bar is None or bar.noun != step:  # a new step: end the previous bar's line
                if bar is not None:
                    bar.finish()
                bar = ProgressBar(self.stderr, total=total, noun=step)
            bar.update(done, total=total)

        report = purge_execute(progress=progress)
        if bar is not None:
            bar.finish()
        self.stdout.write(self.style.SUCCESS(
            f"Purged {report.sessions} session(s) ({report.traces} trace(s), {report.logs} log line(s)), "
            f"{report.payloads} payload capture(s) and {report.blobs} blob(s); "
            f"shredded {report.data_keys_shredded} data key(s)."
        ))
