import signal
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django.utils import timezone

from konnect_admin.scheduling import SCHEDULE, schedule_tick


class Command(BaseCommand):
    help = (
        "Enqueue scheduled background work when it is due (key health sweeps, session expiry, purges, recovery "
        "of re-wraps whose worker died); workers run it. Several schedulers may run: each due run is enqueued once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tick", type=float, default=1.0, help="Seconds between looks at the schedule.")
        parser.add_argument("--once", action="store_true", help="Enqueue what is due now, then exit.")

    def handle(self, *args, tick: float, once: bool, verbosity: int, **options):
        self.running = True
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        if verbosity:
            for entry in SCHEDULE:
                self.stdout.write(f"  {entry.name}: {entry.task_path} every {entry.interval}")
        while self.running:
            close_old_connections()
            now = timezone.now()
            for name in schedule_tick(now=now):
                self.stdout.write(f"enqueued {name} at {now.isoformat()}")
            if verbosity > 1:
                self.stdout.write("tick")
            if once:
                return
            time.sleep(tick)

    def _stop(self, signum, frame):
        self.running = False
