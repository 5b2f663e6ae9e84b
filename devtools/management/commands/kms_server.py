from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devtools.local_kms import main


class Command(BaseCommand):
    help = (
        "Run the local KMS server (moto + the AWS-fidelity layer) on loopback, for development and tests. "
        "Prints the KMS_ENDPOINT_URL and PLATFORM_KMS_KEYS to export."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=4566)
        parser.add_argument(
            "--create-platform-keys",
            default="us=us-west-2+us-east-2,eu=eu-central-1+eu-west-1",
            help="geo=aws-region[+replica-region],… (empty to create none)",
        )
        parser.add_argument(
            "--caller-principal",
            default=getattr(settings, "PLATFORM_KMS_PRINCIPAL", ""),
            help="whom callers stand for in key policies (default: PLATFORM_KMS_PRINCIPAL, as the Link key page shows)",
        )

    def handle(self, *args, **options):
        if options["host"] not in ("127.0.0.1", "localhost", "::1"):
            raise CommandError("The local KMS server only listens on loopback.")
        argv = ["--host", options["host"], "--port", str(options["port"])]
        if options["caller_principal"]:
            argv += ["--caller-principal", options["caller_principal"]]
        if options["create_platform_keys"]:
            argv += ["--create-platform-keys", options["create_platform_keys"]]
        code = main(argv, stdout=self.stdout)
        if code:
            raise CommandError(f"local KMS server exited with status {code}")
