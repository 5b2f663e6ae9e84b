"""Upgrade field envelopes v1 to v2 (bound to tenant and scope, docs/envelope.md), for every encrypted field.

    manage.py reseal                 # dry run: v1/v2 counts per model field, what would be refused; no KMS call
    manage.py reseal --yes           # upgrade, in batches, resumable; one KMS Decrypt per data key

Values are sealed again under the same data key. A value whose row was moved to another tenant or scope
is refused (never re-sealed into the new scope), counted and reported as a security event.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from encryption_keys.lifecycle.console import ProgressBar
from encryption_keys.lifecycle.reseal import BATCH_SIZE, ResealReport, reseal_count, reseal_values


class Command(BaseCommand):
    help = "Upgrade v1 field envelopes to v2 (bound to organization, region, purpose and scope). Dry run unless --yes."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="Rows per transaction.")
        parser.add_argument("--yes", action="store_true", help="Write; without it, only count.")

    def handle(self, *args, batch_size, yes, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        bar = ProgressBar(self.stderr, total=reseal_count(), noun="rows")
        report = reseal_values(yes=yes, batch_size=batch_size, on_progress=bar.update)
        bar.finish()
        self.print_report(report)
        if not yes:
            self.stdout.write("Dry run: nothing changed. Re-run with --yes to upgrade (it can be stopped and re-run).")
            return
        if not report.complete:
            reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(report.not_upgraded.items()))
            raise CommandError(f"Not complete: {sum(report.not_upgraded.values())} v1 values were not upgraded "
                               f"({reasons}); they stay v1. A scope_mismatch is a row moved to another tenant or "
                               "scope (see the audit log); other codes clear once the key is readable again.")

    def print_report(self, report: ResealReport) -> None:
        verb = "would upgrade" if report.dry_run else "upgraded"
        for label, counts in sorted(report.fields.items()):
            done = counts.v1 - sum(counts.not_upgraded.values()) if report.dry_run else counts.upgraded
            refused = "".join(f", {reason}: {n}" for reason, n in sorted(counts.not_upgraded.items()))
            self.stdout.write(f"{label}: v1 {counts.v1}, v2 {counts.v2}; {verb} {done}{refused}")
        if not report.fields:
            self.stdout.write("No encrypted values stored.")
