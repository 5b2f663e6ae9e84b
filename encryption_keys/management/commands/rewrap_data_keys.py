"""Replace an organization's key for a region and re-wrap its data keys (or resume such a job).

    manage.py rewrap_data_keys --org Acme --region us --to-arn arn:aws:kms:…          # dry run
    manage.py rewrap_data_keys --org Acme --region us --to-arn arn:aws:kms:… --yes    # do it
    manage.py rewrap_data_keys --org Acme --region us --resume 42 --yes               # finish job 42
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from encryption_keys import call_log
from encryption_keys.lifecycle import lease
from encryption_keys.lifecycle.console import ProgressBar, organization_from_argument, region_from_argument
from encryption_keys.lifecycle.models import RewrapJob
from encryption_keys.lifecycle.records import count_records
from encryption_keys.lifecycle.replace import (
    KeyReplacementError,
    KeyVerificationFailed,
    linked_key,
    replace_key,
    resume_rewrap,
)
from encryption_keys.lifecycle.rewrap import RewrapInterrupted, data_keys_under, rewrap_data_keys
from encryption_keys.models import KmsCall
from encryption_keys.ownership import KeyInUse, refuse_key_in_use
from encryption_keys.verification import verify_key


def _data_keys(count: int) -> str:
    return f"{count} data key{'' if count == 1 else 's'}"


def rewrap_plan(count: int) -> str:
    """The key-service calls re-wrapping ``count`` data keys takes, in words true for that count."""
    if count == 0:
        return "no key-service calls needed"
    calls = f"{count} re-wrap call{'' if count == 1 else 's'}"
    return (f"{calls}, one per data key (ReEncrypt; Decrypt + Encrypt instead where a key policy refuses "
            "ReEncrypt)")


class Command(BaseCommand):
    help = "Replace an organization's KMS key for a region by re-wrapping its data keys. Dry run unless --yes."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Organization id or exact name.")
        parser.add_argument("--region", required=True, help="Konnect region (us, eu, au, me, in, sg).")
        parser.add_argument("--to-arn", help="The new key's ARN (it must pass the linking checklist).")
        parser.add_argument("--resume", type=int, metavar="JOB_ID", help="Finish an interrupted re-wrap job.")
        parser.add_argument("--yes", action="store_true", help="Act; without it, only say what would happen.")

    def handle(self, *args, org, region, to_arn, resume, yes, **options):
        organization = organization_from_argument(org)
        region = region_from_argument(region)
        if resume is not None:
            job = RewrapJob.objects.filter(pk=resume, organization=organization, region=region).first()
            if job is None:
                raise CommandError(f"No re-wrap job #{resume} for {organization.name} in region {region}.")
            if to_arn and to_arn.strip() != job.new_key_ref:
                raise CommandError(f"Job #{job.pk} re-wraps to {job.new_key_ref}, not {to_arn}.")
            return self.resume(job, yes=yes)
        if not to_arn:
            raise CommandError("Give --to-arn (the new key) or --resume JOB_ID.")
        return self.replace(organization, region, to_arn.strip(), yes=yes)

    def replace(self, organization, region, to_arn, *, yes):
        try:
            old_arn = linked_key(organization=organization, region=region).key_ref
        except KeyReplacementError as error:
            raise CommandError(str(error)) from None
        if not yes:
            try:  # what --yes would refuse first, and before asking KMS about another organization's key
                refuse_key_in_use(organization=organization, region=region, key_ref=to_arn)
            except KeyInUse as in_use:
                raise CommandError(str(in_use)) from None
            checklist = verify_key(organization=organization, region=region, key_ref=to_arn)
            self.print_checklist(checklist)
            self.plan(organization, region, old_arn, to_arn)
            if not checklist.ok:
                raise CommandError("The new key fails verification; nothing would be replaced.")
            self.stdout.write("Dry run: nothing changed. Re-run with --yes to replace the key.")
            return
        try:
            job = replace_key(organization=organization, region=region, new_key_ref=to_arn, actor=None, start=False)
        except KeyVerificationFailed as failed:
            self.print_checklist(failed.checklist)
            raise CommandError("The new key fails verification; nothing was replaced.") from None
        except KeyReplacementError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Key switched: new data of {organization.name} ({region}) is encrypted under {to_arn}.")
        self.run(job)

    def resume(self, job, *, yes):
        left = data_keys_under(organization_id=job.organization_id, region=job.region, key_ref=job.old_key_ref).count()
        self.stdout.write(f"Job #{job.pk} ({job.get_state_display().lower()}): {_data_keys(job.done)} re-wrapped, "
                          f"{left} still under {job.old_key_ref}.")
        if not yes:
            self.stdout.write(f"Would re-wrap {_data_keys(left)} to {job.new_key_ref}: {rewrap_plan(left)}.")
            self.stdout.write("Dry run: nothing changed. Re-run with --yes to resume.")
            return
        if not job.is_finished:
            self.stderr.write(f"Job #{job.pk} is marked {job.state}: taking it over (its process must have stopped).")
        try:
            job = resume_rewrap(job=job, actor=None, take_over=True, start=False)
        except KeyReplacementError as error:
            raise CommandError(str(error)) from None
        self.run(job)

    def plan(self, organization, region, old_arn, to_arn):
        ids = list(data_keys_under(organization_id=organization.pk, region=region, key_ref=old_arn)
                   .values_list("pk", flat=True))
        records = count_records(ids, organization_id=organization.pk)
        self.stdout.write(f"Would switch {organization.name} ({region}) from {old_arn} to {to_arn}.")
        self.stdout.write(f"Data keys to re-wrap: {len(ids)}: {rewrap_plan(len(ids))}.")
        per_model = ", ".join(f"{label} {count}" for label, count in sorted(records.items()))
        self.stdout.write(f"Records protected by them: {sum(records.values())}{f' ({per_model})' if per_model else ''}; "
                          "records rewritten: 0.")

    def run(self, job):
        started = timezone.now()
        owner = lease.worker_identity()  # held like a worker holds it, so no worker runs the job meanwhile
        if not lease.claim(job.pk, owner=owner):
            raise CommandError(f"A task worker is running job #{job.pk} now; watch its page instead.")
        heartbeat = lease.Heartbeat(job.pk, owner=owner)
        bar = ProgressBar(self.stderr, total=job.total, noun="data keys")

        def progress(j):
            heartbeat(j)
            bar.update(j.processed, total=max(j.total, j.processed))

        try:
            job = rewrap_data_keys(job, on_progress=progress)
        except RewrapInterrupted as interrupted:
            bar.finish()
            self.summary(interrupted.job, started)
            raise CommandError(f"Interrupted ({interrupted.error}). Nothing is lost; finish with "
                               f"--resume {job.pk} --yes.") from None
        finally:
            lease.release(job.pk, owner=owner)
        bar.finish()
        self.summary(job, started)
        if job.failed:
            for failure in job.failures.all():
                self.stdout.write(f"  {failure.data_key_id}: {failure.code} {failure.detail}")
            raise CommandError(f"{_data_keys(job.failed)} could not be re-wrapped and stay under {job.old_key_ref}. "
                               f"Restore access to that key, then: --resume {job.pk} --yes.")

    def summary(self, job, started):
        call_log.flush()
        calls = KmsCall.objects.filter(organization_id=job.organization_id, created_at__gte=started)
        counts = {op: calls.filter(operation=op).count() for op in ("ReEncrypt", "Decrypt", "Encrypt")}
        self.stdout.write(
            f"Job #{job.pk}: {job.get_state_display().lower()}. Re-wrapped {job.done} of {_data_keys(job.total)}, "
            f"failed {job.failed}. KMS calls: " + ", ".join(f"{op} {n}" for op, n in counts.items()) + "."
        )

    def print_checklist(self, checklist):
        for check in checklist.checks:
            line = f"  [{check.verdict.value:>7}] {check.title}: {check.explanation}"
            self.stdout.write(line + (f" Fix: {check.fix}" if check.fix and check.verdict != "pass" else ""))
