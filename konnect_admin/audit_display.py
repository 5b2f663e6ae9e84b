"""Audit events as people read them: a phrase per action, the target and the objects the details name shown by
name (linked while they still exist in the organization, the id on hover), and details as words, never dict text.

Events keep what was written (ids, codes, counts); this module only reads them. Objects are looked up per page,
one query per kind, always inside the viewer's organization: an id of another organization's object shows as an id.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.apps import apps
from django.core.exceptions import ValidationError
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from konnect_admin.models import AuditEvent, Organization, Role
from konnect_admin.permissions import Action, can

ACTIONS: dict[str, str] = {
    "access_token.created": "Created a personal access token",
    "access_token.revoked": "Revoked a personal access token",
    "control_plane.created": "Created a control plane",
    "data_plane_token.created": "Created a data-plane token",
    "data_plane_token.revoked": "Revoked a data-plane token",
    "debug_session.created": "Started a debug session",
    "debug_session.cancelled": "Cancelled a debug session",
    "debug_session.deleted": "Deleted a debug session",
    "debugger.retention_purged": "Purged expired Debugger data",
    "encryption.resealed": "Re-sealed encrypted values in the current format",
    "encryption.scope_mismatch": "Refused values sealed for another scope",
    "encryption_key.linked": "Linked an encryption key",
    "encryption_key.updated": "Edited an encryption key",
    "encryption_key.unlinked": "Unlinked an encryption key",
    "encryption_key.checked": "Checked an encryption key",
    "encryption_key.status_changed": "Encryption key status changed",
    "encryption_key.replaced": "Replaced an encryption key",
    "encryption_key.rewrap_started": "Started moving data keys to the new key",
    "encryption_key.rewrap_finished": "Finished moving data keys to the new key",
    "encryption_key.rewrap_interrupted": "Moving data keys to the new key was interrupted",
    "encryption_key.data_keys_retired": "Retired data keys",
    "encryption_key.data_keys_shredded": "Shredded data keys",
    "encryption_key.scope_reencrypted": "Re-encrypted a scope under a fresh data key",
    "encryption_key.usage_log_purged": "Purged the old key-usage log",
    "invitation.created": "Invited someone",
    "invitation.resent": "Resent an invitation",
    "invitation.revoked": "Revoked an invitation",
    "invitation.accepted": "Accepted an invitation",
    "login.locked_out": "Locked out log-ins after repeated failures",
    "member.added": "Added a member",
    "member.removed": "Removed a member",
    "organization.created": "Created the organization",
    "organization.suspended": "Suspended the organization",
    "organization.reactivated": "Reactivated the organization",
    "organization.deleted": "Deleted the organization",
    "role.assigned": "Assigned a role",
    "role.revoked": "Revoked a role",
    "system_account.created": "Created a system account",
    "system_account.updated": "Edited a system account",
    "system_account.deleted": "Deleted a system account",
    "system_account.team_added": "Added a system account to a team",
    "system_account.team_removed": "Removed a system account from a team",
    "system_account.role_assigned": "Assigned a role to a system account",
    "system_account.role_revoked": "Revoked a role of a system account",
    "system_account.token_created": "Created a system-account token",
    "system_account.token_revoked": "Revoked a system-account token",
    "team.member_added": "Added someone to a team",
    "team.member_removed": "Removed someone from a team",
    "user.deactivated": "Deactivated a user",
    "user.reactivated": "Reactivated a user",
    "user.password_reset_requested": "Requested a password reset",
    "user.password_reset_sent": "Sent a password reset",
    "vault.config_store.created": "Created a config store",
    "vault.config_store.renamed": "Renamed a config store",
    "vault.config_store.deleted": "Deleted a config store",
    "vault.secret.created": "Created a secret",
    "vault.secret.updated": "Changed a secret's value",
    "vault.secret.deleted": "Deleted a secret",
    "vault.vault.created": "Created a vault",
    "vault.vault.updated": "Edited a vault",
    "vault.vault.deleted": "Deleted a vault",
    "vault.protected_with_cmek": "Moved a vault under the organization's key",
    "vault.cmek_protection_failed": "Moving a vault under the organization's key failed",
    "vault.resolution_log_purged": "Purged the old secret-resolution log",
}

# What the system does on a schedule, many times a day: the Overview summarises these instead of listing them.
ROUTINE_ACTIONS = frozenset({
    "encryption_key.checked", "debugger.retention_purged", "encryption_key.usage_log_purged",
    "vault.resolution_log_purged",
})
SYSTEM = "system"


@dataclass(frozen=True)
class Kind:
    """An object an event can name: where to find it inside an organization, its page, and the right that page needs
    (checked on `scope(obj)`, the organization when None): a reader without it sees the name, not a link."""

    model: str
    organization_path: str
    url: Callable[[object], str] | None = None
    noun: str = "object"
    action: Action = Action.ORG_VIEW
    scope: Callable[[object], object] | None = None
    gone: str = "no longer exists"


def _its_control_plane(obj):
    return obj.control_plane


KINDS: dict[str, Kind] = {
    "konnect_admin.controlplane": Kind("konnect_admin.ControlPlane", "organization",
                                       lambda o: reverse("control_plane_detail", args=[o.pk]), "control plane",
                                       Action.CONTROL_PLANE_VIEW, lambda o: o),
    "konnect_admin.user": Kind("konnect_admin.User", "memberships__organization",
                               lambda o: reverse("member_list"), "user", Action.MEMBERS_VIEW,
                               gone="no longer a member"),
    "konnect_admin.systemaccount": Kind("konnect_admin.SystemAccount", "organization",
                                        lambda o: reverse("system_account_detail", args=[o.pk]), "system account",
                                        Action.MEMBERS_MANAGE),
    "konnect_admin.invitation": Kind("konnect_admin.Invitation", "organization", lambda o: reverse("member_list"),
                                     "invitation", Action.MEMBERS_VIEW),
    "konnect_admin.personalaccesstoken": Kind("konnect_admin.PersonalAccessToken", "organization", None, "token"),
    "konnect_admin.dataplanetoken": Kind("konnect_admin.DataPlaneToken", "control_plane__organization",
                                         lambda o: reverse("control_plane_detail", args=[o.control_plane_id]),
                                         "token", Action.CONTROL_PLANE_ADMIN, _its_control_plane),
    "konnect_admin.systemaccountaccesstoken": Kind(
        "konnect_admin.SystemAccountAccessToken", "system_account__organization",
        lambda o: reverse("system_account_detail", args=[o.system_account_id]), "token", Action.MEMBERS_MANAGE),
    "konnect_admin.organization": Kind("konnect_admin.Organization", "pk", None, "organization"),
    "encryption_keys.encryptionkey": Kind("encryption_keys.EncryptionKey", "organization",
                                          lambda o: reverse("encryption_key_detail", args=[o.pk]), "key", Action.KEY_VIEW),
    "encryption_keys.rewrapjob": Kind("encryption_keys.RewrapJob", "organization",
                                      lambda o: reverse("rewrap_job_detail", args=[o.pk]), "key replacement",
                                      Action.KEY_VIEW),
    "vault.configstore": Kind("vault.ConfigStore", "control_plane__organization",
                              lambda o: reverse("vault_secret_list", args=[o.control_plane_id, o.pk]), "config store",
                              Action.VAULT_VIEW, _its_control_plane),
    "vault.secret": Kind("vault.Secret", "store__control_plane__organization",
                         lambda o: reverse("vault_secret_list", args=[o.store.control_plane_id, o.store_id]),
                         "secret", Action.VAULT_VIEW, lambda o: o.store.control_plane),
    "vault.vault": Kind("vault.Vault", "control_plane__organization",
                        lambda o: reverse("vault_config_store_list", args=[o.control_plane_id]), "vault",
                        Action.VAULT_VIEW, _its_control_plane),
    "debugger.debugsession": Kind("debugger.DebugSession", "control_plane__organization",
                                  lambda o: reverse("debug_session_detail", args=[o.control_plane_id, o.pk]),
                                  "debug session", Action.DEBUG_SESSION_VIEW, _its_control_plane),
}
# Detail keys that hold the id of an object of one of KINDS.
REFERENCES = {
    "control_plane": "konnect_admin.controlplane",
    "config_store": "vault.configstore",
    "system_account": "konnect_admin.systemaccount",
    "rewrap_job": "encryption_keys.rewrapjob",
}
LABELS = {
    "key_arn": "Key ARN", "old_key_arn": "Old key ARN", "new_key_arn": "New key ARN", "ip_address": "IP address",
    "key_ref": "Key", "old_key_ref": "Old key", "new_key_ref": "New key",
    "data_key_id": "Data key", "pk": "Record", "via": "Via", "expires_at": "Expires", "at": "At",
    "duration_seconds": "Duration", "max_samples": "Samples at most", "rewrap_job": "Key replacement",
    "previous_status": "Previous status", "older_than_days": "Older than", "to_version": "To format version",
}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


@dataclass(frozen=True)
class Shown:
    """One value as a page shows it: text, a link while the object exists, and the raw id on hover."""

    text: str
    url: str = ""
    title: str = ""
    code: bool = False


@dataclass(frozen=True)
class Fact:
    label: str
    value: Shown


@dataclass
class EventView:
    event: AuditEvent
    phrase: str
    actor: Shown
    target: Shown | None
    facts: list[Fact] = field(default_factory=list)


def action_phrase(action: str) -> str:
    """The words for an action; one no table knows yet still reads as words (`foo.bar_baz` → "Foo: bar baz")."""
    if action in ACTIONS:
        return ACTIONS[action]
    family, _, rest = action.rpartition(".")
    return f"{_words(family).capitalize()}: {_words(rest)}" if family else _words(action).capitalize()


def describe(events: Iterable[AuditEvent], *, organization: Organization, viewer) -> list[EventView]:
    events = list(events)
    wanted: dict[str, set[str]] = defaultdict(set)
    for event in events:
        if event.target_type in KINDS and event.target_id:
            wanted[event.target_type].add(event.target_id)
        for key, kind in REFERENCES.items():
            value = (event.details or {}).get(key) if isinstance(event.details, dict) else None
            if value not in (None, "", "*"):
                wanted[kind].add(str(value))
    found = {kind: _lookup(kind, ids, organization, viewer) for kind, ids in wanted.items()}
    return [_view(event, found) for event in events]


def _lookup(kind: str, ids: set[str], organization: Organization, viewer) -> dict[str, tuple[object, bool]]:
    """id → (object, whether the viewer may open its page), for the ids that name one in `organization`."""
    spec = KINDS[kind]
    try:
        model = apps.get_model(spec.model)
    except LookupError:
        return {}
    pk_field = model._meta.pk
    valid = []
    for text in ids:
        try:
            valid.append(pk_field.to_python(text))
        except ValidationError:  # an id of another shape names nothing here
            pass
    if not valid:
        return {}
    queryset = model._default_manager.filter(pk__in=valid, **{spec.organization_path: organization.pk})
    if kind == "vault.secret":
        queryset = queryset.select_related("store__control_plane__organization")
    elif "control_plane" in spec.organization_path:
        queryset = queryset.select_related("control_plane__organization")
    found = {}
    for obj in queryset.distinct():
        scope = spec.scope(obj) if spec.scope else organization
        found[str(obj.pk)] = (obj, spec.url is not None and can(viewer, spec.action, scope))
    return found


def _view(event: AuditEvent, found: dict[str, dict[str, object]]) -> EventView:
    actor = Shown(event.actor_label or SYSTEM, title="" if event.actor_id else "Done by the platform, not a person")
    target = None
    if event.target_type or event.target_label:
        target = _object(event.target_type, event.target_id, found, label=event.target_label)
    details = event.details if isinstance(event.details, dict) else {"details": event.details}
    facts = [Fact(_label(key), _value(key, value, found)) for key, value in details.items()]
    return EventView(event=event, phrase=action_phrase(event.action), actor=actor, target=target, facts=facts)


def _object(kind: str, pk: str, found: dict[str, dict[str, object]], *, label: str = "") -> Shown:
    obj, may_open = found.get(kind, {}).get(str(pk), (None, False))
    noun = KINDS[kind].noun if kind in KINDS else _words(kind.rpartition(".")[2] or "object")
    title = f"{noun} id {pk}" if pk else ""
    if obj is None:
        text = label if label and not _UUID.match(label) else f"{noun} {_short(pk)}"
        return Shown(f"{text} ({KINDS[kind].gone})" if pk and kind in KINDS else text, title=title)
    url = ""
    if may_open:
        try:
            url = KINDS[kind].url(obj)
        except NoReverseMatch:  # the app that owns the page is not installed
            url = ""
    return Shown(str(obj), url=url, title=title)


def _value(key: str, value, found) -> Shown:
    if key in REFERENCES and isinstance(value, str | int) and value not in ("", "*"):
        return _object(REFERENCES[key], str(value), found)
    if key == "control_plane" and value == "*":
        return Shown("All control planes")
    if key == "role" and value in Role.values:
        return Shown(Role(value).label)
    if key.endswith("key_arn") and isinstance(value, str):
        return Shown(value, code=True)
    if key == "checks" and isinstance(value, dict):
        return _verdicts(value)
    if key == "duration_seconds" and isinstance(value, int):
        return Shown(_duration(value))
    if key == "older_than_days" and isinstance(value, int):
        return Shown(f"{value} day{'s' if value != 1 else ''}")
    return Shown(_text(value), title=str(value) if isinstance(value, str) and _UUID.match(value) else "")


def _verdicts(checks: dict) -> Shown:
    """A checklist's verdicts: "6 pass, 1 warn", each check on hover."""
    counts: dict[str, int] = defaultdict(int)
    for verdict in checks.values():
        counts[str(verdict)] += 1
    summary = ", ".join(f"{count} {verdict}" for verdict, count in sorted(counts.items()))
    return Shown(summary or "none", title="; ".join(f"{_words(k)}: {v}" for k, v in checks.items()))


def _text(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:,}"
    if isinstance(value, list | tuple | set):
        return ", ".join(_text(item) for item in value) if value else "none"
    if isinstance(value, dict):
        return "; ".join(f"{_words(str(k))}: {_text(v)}" for k, v in value.items()) if value else "none"
    text = str(value)
    if _UUID.match(text):
        return _short(text)
    if _ISO_MOMENT.match(text) and (moment := _moment(text)) is not None:
        return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")
    return text


def _moment(text: str):
    try:
        return parse_datetime(text)
    except ValueError:
        return None


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _short(pk) -> str:
    text = str(pk)
    try:
        return str(uuid.UUID(text))[:8] + "…"
    except ValueError:
        return f"#{text}" if text.isdigit() else text


def _label(key: str) -> str:
    return LABELS.get(key) or _words(key).capitalize()


def _words(code: str) -> str:
    return code.replace("_", " ").replace(".", " ").strip()
