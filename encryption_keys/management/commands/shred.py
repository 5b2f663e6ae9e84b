"""Crypto-shredding: destroy the data keys of a debug session, a config store, or everything older than a date.

    manage.py shred --org Acme --session <debug session id>          # dry run
    manage.py shred --org Acme --config-store <config store id> --yes
    manage.py shred --org Acme --before 2026-01-01 --yes

`--before` refuses a date that would take data keys still sealing new values (a date after the newest retired
data key, e.g. in the future): their data would become unreadable moments after it was written. `--force` overrides.
"""

from __future__ import annotations

from datetime import datetime, time

from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from encryption_keys.lifecycle.console import organization_from_argument
from encryption_keys.lifecycle.records import count_records
from encryption_keys.lifecycle.shred import (
    config_store_data_keys,
    data_keys_before,
    session_data_keys,
    shred_data_keys,
)
from encryption_keys.models import DataKey


class Command(BaseCommand):
    help = "Destroy data keys so the data they protect becomes unreadable (data_key_shredded). Dry run unless --yes."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Organization id or exact name.")
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--session", help="A debug session id.")
        target.add_argument("--config-store", help="A config store id.")
        target.add_argument("--before", help="A date (YYYY-MM-DD) or ISO datetime: data keys that stopped "
                                             "encrypting before it.")
        parser.add_argument("--yes", action="store_true", help="Act; without it, only say what would happen.")
        parser.add_argument("--force", action="store_true",
                            help="With --before: shred even data keys still in use (sealing new values).")

    def handle(self, *args, org, session, config_store, before, yes, force, **options):
        organization = organization_from_argument(org)
        if session:
            owner = _owner("debugger", "DebugSession", session, organization, "debug session")
            queryset = session_data_keys(organization=organization, control_plane_id=owner.control_plane_id,
                                         session_id=owner.pk)
            what = f"debug session {session}"
        elif config_store:
            owner = _owner("vault", "ConfigStore", config_store, organization, "config store")
            queryset = config_store_data_keys(organization=organization, control_plane_id=owner.control_plane_id,
                                              config_store_id=owner.pk)
            what = f"config store {config_store}"
        else:
            moment = _moment(before)
            queryset, what = data_keys_before(organization=organization, before=moment), f"data before {moment:%Y-%m-%d %H:%M %Z}"
            if not force:
                _refuse_keys_in_use(queryset, organization=organization, before=moment)
        live = queryset.filter(shredded_at__isnull=True)
        ids = list(live.values_list("pk", flat=True))
        records = sum(count_records(ids, organization_id=organization.pk).values())
        if not ids:
            self.stdout.write(f"Nothing to shred for {what} of {organization.name}: no live data keys.")
            return
        if not yes:
            self.stdout.write(f"Would shred {len(ids)} data keys of {what} ({organization.name}); {records} records "
                              "would become unreadable (data_key_shredded), for good.")
            self.stdout.write("Dry run: nothing changed. Re-run with --yes to shred.")
            return
        shredded = shred_data_keys(queryset=live, actor=None, reason=f"shred command: {what}")
        self.stdout.write(f"Shredded {shredded} data keys of {what} ({organization.name}); {records} records now "
                          "report data_key_shredded.")


def _owner(app_label: str, model_name: str, pk: str, organization, noun: str):
    """The organization's debug session / config store: its control plane is part of its data keys' scope."""
    try:
        model = apps.get_model(app_label, model_name)
    except LookupError:
        raise CommandError(f"The {app_label} app is not installed: there is no {noun} to shred.") from None
    try:
        owner = model._base_manager.filter(pk=pk, control_plane__organization=organization).first()
    except (ValidationError, ValueError):
        raise CommandError(f"{pk!r} is not a {noun} id.") from None
    if owner is None:
        raise CommandError(f"No {noun} {pk} in {organization.name}.")
    return owner


def _refuse_keys_in_use(queryset, *, organization, before: datetime) -> None:
    """`--before` past the newest retired data key selects keys that still seal new values: refuse, saying why."""
    now = timezone.now()
    in_use = queryset.filter(shredded_at__isnull=True, encrypt_until__gt=now).filter(
        Q(retired_at__isnull=True) | Q(retired_at__gt=now)
    ).count()
    if not in_use:
        return
    retired = DataKey.objects.filter(organization=organization).aggregate(
        until=Max("encrypt_until", filter=Q(encrypt_until__lte=now)), retired=Max("retired_at", filter=Q(retired_at__lte=now))
    )
    newest = max((moment for moment in retired.values() if moment is not None), default=None)
    limit = (f"The newest retired data key stopped encrypting on {newest:%Y-%m-%d %H:%M %Z}: choose a date up to then"
             if newest else "No data key has been retired yet, so there is nothing older to shred")
    raise CommandError(
        f"--before {before:%Y-%m-%d %H:%M %Z} would shred {in_use} data key{'s' if in_use != 1 else ''} still in use: "
        f"what {organization.name} writes now would become unreadable at once. {limit}, or add --force if this is "
        "really meant."
    )


def _moment(text: str) -> datetime:
    try:
        parsed = parse_datetime(text)
        day = parse_date(text) if parsed is None else None
    except ValueError:
        parsed = day = None
    if parsed is None:
        if day is None:
            raise CommandError(f"--before: {text!r} is not a date (YYYY-MM-DD) or ISO datetime.")
        parsed = datetime.combine(day, time.min)
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed
