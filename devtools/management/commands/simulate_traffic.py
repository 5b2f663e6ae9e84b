import uuid

from django.core.management.base import BaseCommand, CommandError

from devtools.simulator.dataplane import SimulationError
from devtools.simulator.runner import simulate_traffic
from konnect_admin.models import ControlPlane, User

BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Play a gateway data plane against the Debugger ingest API: generated Kong traffic, sampled by the "
        "control plane's active debug sessions (traces with spans, masked headers, JSON bodies, log lines)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--control-plane", required=True, help="Control plane id or name.")
        parser.add_argument("--requests", type=int, default=20, help="Gateway requests to simulate (default 20).")
        parser.add_argument("--session", help="Only this debug session (default: every active one).")
        parser.add_argument("--token", help="A data-plane token (kdpt_…); default: a temporary one, revoked after.")
        parser.add_argument("--actor", help="Email of who issues the temporary token (default: an Org Admin).")
        parser.add_argument("--url", help="Base URL of a running server, e.g. http://127.0.0.1:8000 "
                                          "(default: in this process, no server needed).")
        parser.add_argument("--seed", type=int, help="Seed for reproducible traffic.")
        parser.add_argument("--finish", action="store_true", help="Mark the sessions done afterwards.")

    def handle(self, *args, **options):
        if not 1 <= options["requests"] <= 100_000:
            raise CommandError("--requests must be between 1 and 100000.")
        if options["token"] and not options["token"].startswith("kdpt_"):
            raise CommandError("--token must be a data-plane token (kdpt_…).")
        control_plane = self.control_plane(options["control_plane"])
        actor = self.actor(options["actor"]) if options["actor"] else None
        try:
            report = simulate_traffic(
                control_plane=control_plane, requests=options["requests"], session_id=options["session"],
                token=options["token"], url=options["url"], actor=actor, seed=options["seed"],
                finish=options["finish"], progress=self.progress,
            )
        except SimulationError as error:
            raise CommandError(str(error)) from None
        finally:
            self.stderr.write("")
        for session_id, count in report.sampled.items():
            self.stdout.write(f"  session {session_id}: {count} trace(s) sampled")
        self.stdout.write(self.style.SUCCESS(
            f"Simulated {report.requests} request(s) on {control_plane.name}: {report.total_sampled} sampled"
            + (f", {report.retries} retried after 503" if report.retries else "")
            + (f", {len(report.finished)} session(s) finished" if report.finished else "") + "."
        ))

    def progress(self, done: int, total: int, sampled: int) -> None:
        filled = BAR_WIDTH * done // total
        self.stderr.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} requests, {sampled} sampled",
                          ending="")
        self.stderr.flush()

    def control_plane(self, reference: str) -> ControlPlane:
        try:
            matches = ControlPlane.objects.filter(pk=uuid.UUID(reference))
        except ValueError:
            matches = ControlPlane.objects.filter(name=reference)
        matches = list(matches.select_related("organization")[:10])
        if not matches:
            raise CommandError(f"No control plane {reference!r}.")
        if len(matches) > 1:
            listed = ", ".join(f"{cp.pk} ({cp.organization}, {cp.region})" for cp in matches)
            raise CommandError(f"{len(matches)} control planes are named {reference!r}: give the id — {listed}.")
        return matches[0]

    def actor(self, email: str) -> User:
        user = User.objects.filter(email__iexact=email, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {email!r}.")
        return user
