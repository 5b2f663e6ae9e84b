"""What the key-lifecycle management commands share: finding the organization, a progress bar on stderr."""

from __future__ import annotations

import uuid

from django.core.management.base import CommandError, OutputWrapper

from konnect_admin.models import Organization, Region


def organization_from_argument(text: str) -> Organization:
    """`--org` takes the organization's id or its exact name."""
    text = (text or "").strip()
    try:
        found = list(Organization.objects.filter(pk=uuid.UUID(text)))
    except ValueError:
        found = list(Organization.objects.filter(name__iexact=text)[:2])
    if not found:
        raise CommandError(f"No organization {text!r} (give its id or exact name).")
    if len(found) > 1:
        raise CommandError(f"Several organizations are named {text!r}; give the id instead.")
    return found[0]


def region_from_argument(text: str) -> str:
    if text not in Region.values:
        raise CommandError(f"Unknown region {text!r}; expected one of {', '.join(Region.values)}.")
    return text


class ProgressBar:
    """`[#######.............]  35/100 data keys` redrawn in place on stderr."""

    WIDTH = 30

    def __init__(self, stream: OutputWrapper, *, total: int, noun: str):
        self.stream, self.total, self.noun = stream, total, noun
        self.shown = -1

    def update(self, done: int, *, total: int | None = None) -> None:
        if total is not None:
            self.total = total
        if done == self.shown:
            return
        self.shown = done
        filled = self.WIDTH if not self.total else min(self.WIDTH, self.WIDTH * done // self.total)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(f"\r[{bar}] {done:>{len(str(self.total))}}/{self.total} {self.noun}", ending="",
                          style_func=str)
        self.stream.flush()

    def finish(self) -> None:
        if self.shown >= 0:
            self.stream.write("", style_func=str)
