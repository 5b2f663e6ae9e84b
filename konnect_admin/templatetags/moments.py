"""Relative times people read at a glance: "just now", "5 minutes ago", "3 days ago" (the exact time on hover)."""

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince, timeuntil

register = template.Library()
JUST_NOW = timedelta(minutes=1)


@register.filter
def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if not moment:
        return ""
    now = now or timezone.now()
    if abs(now - moment) < JUST_NOW:
        return "just now"
    if moment > now:
        return f"in {timeuntil(moment, now, depth=1)}"
    return f"{timesince(moment, now, depth=1)} ago"
