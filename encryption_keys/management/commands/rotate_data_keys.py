"""Rotate data keys: retire the active ones (new writes get fresh DEKs), or — to answer a DEK compromise —
re-encrypt one scope's records under a fresh DEK and shred the old ones.

    manage.py rotate_data_keys --org Acme [--region us] [--purpose vault.secret] [--scope <cp id>/<store id>]  # dry run
    manage.py rotate_data_keys --org Acme --region us --purpose debugger.payload --scope <cp id>/<session id> \
        --reencrypt --yes [--enqueue]

`--enqueue` hands the re-encryption to a task worker (encryption_keys.tasks.reencrypt_scope_job) instead of
running it here; it refuses while a re-encryption of the same scope is queued or running.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from encryption_keys.lifecycle.console import ProgressBar, organization_from_argument, region_from_argument
from encryption_keys.lifecycle.records import count_records
from encryption_keys.lifecycle.rotate import BATCH_SIZE, active_data_keys, reencrypt_scope, retire_data_keys
from encryption_keys.models import DataKey, Purpose
from encryption_keys.tasks import reencrypt_scope_job, reencryptions_in_queue


class Command(BaseCommand):
    help = "Retire active data keys, or re-encrypt one scope under a fresh data key (--reencrypt). Dry run unless --yes."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Organization id or exact name.")
        parser.add_argument("--region", help="Konnect region (us, eu, au, me, in, sg).")
        parser.add_argument("--purpose", choices=Purpose.values)
        parser.add_argument("--scope", help="Scope reference as the data-key inventory shows it: "
                                            "<control plane id>/<debug session or config store id>.")
        parser.add_argument("--reencrypt", action="store_true",
                            help="Re-encrypt the scope's records under a fresh data key, then shred the old ones "
                                 "(needs --region, --purpose and --scope).")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
        parser.add_argument("--enqueue", action="store_true",
                            help="With --reencrypt --yes: queue it for a task worker (manage.py db_worker) instead "
                                 "of running it in this process.")
        parser.add_argument("--yes", action="store_true", help="Act; without it, only say what would happen.")

    def handle(self, *args, org, region, purpose, scope, reencrypt, batch_size, yes, enqueue, **options):
        organization = organization_from_argument(org)
        region = region_from_argument(region) if region else None
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if enqueue and not reencrypt:
            raise CommandError("--enqueue queues a re-encryption (--reencrypt); retiring data keys is one UPDATE, "
                               "done here.")
        if reencrypt:
            if not (region and purpose and scope):
                raise CommandError("--reencrypt works on one scope: give --region, --purpose and --scope.")
            return self.reencrypt(organization, region, purpose, scope, batch_size=batch_size, yes=yes,
                                  enqueue=enqueue)
        active = active_data_keys(organization=organization, region=region, purpose=purpose, scope_ref=scope)
        count = active.count()
        if not yes:
            self.stdout.write(f"Would retire {count} active data keys of {organization.name}; new writes then get "
                              "fresh data keys (one GenerateDataKey per scope). Nothing is re-encrypted.")
            self.stdout.write("Dry run: nothing changed. Re-run with --yes to retire them.")
            return
        retired = retire_data_keys(organization=organization, region=region, purpose=purpose, scope_ref=scope,
                                   actor=None)
        self.stdout.write(f"Retired {retired} data keys of {organization.name}.")

    def reencrypt(self, organization, region, purpose, scope, *, batch_size, yes, enqueue):
        old = DataKey.objects.filter(organization=organization, region=region, purpose=purpose, scope_ref=scope,
                                     shredded_at__isnull=True)
        ids = list(old.values_list("pk", flat=True))
        if not ids:
            raise CommandError(f"No live data keys for scope {scope} ({purpose}, {region}) of {organization.name}.")
        if not yes:
            records = sum(count_records(ids, organization_id=organization.pk).values())
            self.stdout.write(f"Would re-encrypt {records} records of scope {scope} under a fresh data key, in batches "
                              f"of {batch_size}, then shred its {len(ids)} old data keys. KMS calls: at most "
                              f"{len(ids)} Decrypt and 1 GenerateDataKey.")
            self.stdout.write("Dry run: nothing changed. Re-run with --yes to re-encrypt.")
            return
        if enqueue:
            return self.enqueue(organization, region, purpose, scope, batch_size=batch_size)
        bar = ProgressBar(self.stderr, total=0, noun="records")
        result = reencrypt_scope(organization=organization, region=region, purpose=purpose, scope_ref=scope,
                                 actor=None, batch_size=batch_size,
                                 on_progress=lambda done, total: bar.update(done, total=total))
        bar.finish()
        self.stdout.write(f"Re-encrypted {result.records} records ({result.values} values) of scope {scope}; "
                          f"shredded {result.shredded} of {result.old_data_keys} old data keys.")
        if not result.complete:
            unreadable = ", ".join(f"{code}: {n}" for code, n in sorted(result.unreadable.items()))
            raise CommandError(
                f"Not complete: {result.remaining} records still under the old data keys"
                + (f" ({unreadable} values unreadable)" if unreadable else "")
                + "; the old data keys were kept. Fix access to the key and run again."
            )

    def enqueue(self, organization, region, purpose, scope, *, batch_size):
        arguments = {"organization_id": str(organization.pk), "region": region, "purpose": purpose,
                     "scope_ref": scope}
        already = reencryptions_in_queue(**arguments)
        if already:
            raise CommandError(f"A re-encryption of scope {scope} is already {already[0].status.lower()} "
                               f"(task {already[0].pk}); nothing queued.")
        queued = reencrypt_scope_job.enqueue(**arguments, batch_size=batch_size)
        self.stdout.write(f"Queued the re-encryption of scope {scope} as task {queued.id}; a task worker "
                          "(manage.py db_worker) runs it, and its result records the counts.")
