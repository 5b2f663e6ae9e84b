from django.db import models


class ScheduledRun(models.Model):
    """When one schedule entry (konnect_admin.scheduling.SCHEDULE) is next due.

    The row is the schedulers' lock: a scheduler enqueues an entry only if its UPDATE moved `next_run_at`
    from a due time to the next one, in the transaction that enqueues it; any number of schedulers may tick,
    one enqueue per due time is made."""

    name = models.CharField(max_length=64, unique=True)
    next_run_at = models.DateTimeField()
    last_enqueued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} (next {self.next_run_at:%Y-%m-%d %H:%M:%S})"
