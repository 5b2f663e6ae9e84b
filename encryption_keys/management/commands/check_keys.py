import uuid

from django.core.management.base import BaseCommand, CommandError

from encryption_keys import health, providers, services
from encryption_keys.models import EncryptionKey, KeyStatus
from konnect_admin.models import Organization, Region


class Command(BaseCommand):
    help = (
        "Re-read the state of every linked customer key in its key service (its metadata, rotation, an "
        "encrypt/decrypt round trip), store it, and record status changes in the audit log."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", help="Only this organization (id or exact name).")
        parser.add_argument("--region", choices=Region.values, help="Only keys of this Konnect region.")
        parser.add_argument("--fail-on-unhealthy", action="store_true",
                            help="Exit with status 1 when a key is not healthy (for cron and monitoring).")

    def handle(self, *args, **options):
        # Before anything else (even the database): a key service that cannot be called at all says what to set.
        problem = "; ".join(filter(None, (provider.configuration_problem() for provider in providers.providers())))
        if problem:
            raise CommandError(problem)
        keys = EncryptionKey.objects.select_related("organization").order_by("organization__name", "region")
        if options["org"]:
            keys = keys.filter(organization=self._organization(options["org"]))
        if options["region"]:
            keys = keys.filter(region=options["region"])
        keys = list(keys)
        if not keys:
            self.stdout.write("No linked keys to check.")
            return
        unhealthy = []
        for index, key in enumerate(keys, start=1):
            self.stdout.write(f"[{index}/{len(keys)}] {key.organization.name} · {key.get_region_display()} · "
                              f"{key.name} ({key.key_ref}) … ", ending="")
            try:
                result = services.check_key_health(key=key, actor=None)
            except EncryptionKey.DoesNotExist:
                self.stdout.write("unlinked meanwhile, skipped")
                continue
            except providers.ProviderNotConfigured as error:  # credentials gone mid-run (an expired session)
                raise CommandError(str(error)) from None
            self._report(result)
            if result.key.status not in (KeyStatus.HEALTHY, KeyStatus.ROTATION_DISABLED):
                unhealthy.append(result.key)
        summary = f"Checked {len(keys)} key{'s' if len(keys) != 1 else ''}: {len(keys) - len(unhealthy)} usable, " \
                  f"{len(unhealthy)} unhealthy."
        self.stdout.write(self.style.WARNING(summary) if unhealthy else self.style.SUCCESS(summary))
        if unhealthy and options["fail_on_unhealthy"]:
            raise CommandError(f"{len(unhealthy)} key{'s' if len(unhealthy) != 1 else ''} not healthy: "
                               + ", ".join(f"{k.organization.name}/{k.region}: {k.status}" for k in unhealthy))

    def _organization(self, value: str) -> Organization:
        try:
            lookup = {"pk": uuid.UUID(value)}
        except ValueError:
            lookup = {"name": value}
        organization = Organization.objects.filter(**lookup).first()
        if organization is None:
            raise CommandError(f"No organization {value!r} (give its id or exact name).")
        return organization

    def _report(self, result: services.HealthCheck) -> None:
        key = result.key
        style = self.style.SUCCESS if key.status == KeyStatus.HEALTHY else (
            self.style.WARNING if key.status in (KeyStatus.ROTATION_DISABLED, KeyStatus.UNREACHABLE) else self.style.ERROR
        )
        self.stdout.write(style(key.get_status_display()))
        if result.changed:
            self.stdout.write(f"    status changed: {result.previous_status} → {key.status}")
        rotation = key.kms_metadata.get("rotation_enabled")
        self.stdout.write(f"    automatic rotation: {'on' if rotation else 'off' if rotation is False else 'unknown'}")
        if key.status == KeyStatus.PENDING_DELETION and key.deletion_date:
            self.stdout.write(f"    pending deletion on {key.deletion_date:%Y-%m-%d} "
                              f"({health.days_left(key.deletion_date)} days left)")
        if key.last_error:
            self.stdout.write(f"    {key.last_error}")
