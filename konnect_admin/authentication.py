"""Password log-in hardening around django-axes: the password backend, the lockout page and the lockout audit.

django-axes counts failed log-ins in the database per account and per client IP (``AXES_LOCKOUT_PARAMETERS``) and,
past ``AXES_FAILURE_LIMIT``, refuses every further attempt of that account or from that address for
``AXES_COOLOFF_TIME`` (its ``AxesStandaloneBackend`` runs first and stops the backends below it). This module adds
what is ours: a backend that spends no password hash on unknown accounts, the 429 page a locked-out client sees,
and an audit event in each organization of the locked-out account.
"""

from __future__ import annotations

import math

from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.shortcuts import render
from django.utils import timezone

from konnect_admin.models import AuditEvent, Organization
from konnect_admin.services import audit_record

LOCKOUT_ACTION = "login.locked_out"


class EmailPasswordBackend(ModelBackend):
    """Django's ModelBackend, except that a log-in with an unknown email costs no password hash.

    ModelBackend hashes the submitted password for an unknown user (``UserModel().set_password(password)``) so
    that "no such account" takes as long as "wrong password" and response times do not tell which emails have
    accounts. The price is one full password hash (~0.45 s of CPU with the production hasher) per request, for
    anyone, without an account: a few clients posting random emails keep every web worker busy. We trade the
    timing equalisation for that denial-of-service resistance:

    * an unknown email returns None at once, without running the hasher;
    * what the timing difference could reveal (which emails have accounts) is bounded by the lockout per client
      IP (django-axes, ``AXES_LOCKOUT_PARAMETERS`` includes ``ip_address``): one address learns at most
      ``AXES_FAILURE_LIMIT`` answers per cool-off period, for known and unknown emails alike;
    * a known email still costs exactly one hash (``check_password``), and a locked-out account or address costs
      none, because ``AxesStandaloneBackend`` refuses it before this backend runs.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        user_model = get_user_model()
        if username is None:
            username = kwargs.get(user_model.USERNAME_FIELD)
        if username is None or password is None:
            return None
        try:
            user = user_model._default_manager.get_by_natural_key(username)
        except user_model.DoesNotExist:
            return None  # deliberately no hash: see the class docstring
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None

    def get_user(self, user_id):
        """The session's user, with its system-account link in the same query (refused below if it has one)."""
        user = get_user_model()._default_manager.select_related("system_account").filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None

    def user_can_authenticate(self, user) -> bool:
        """A system account (konnect_admin.system_accounts) never signs in, nor keeps a session: Django asks this
        both at log-in and when it loads the user of a session."""
        from konnect_admin.system_accounts import is_system_account

        return super().user_can_authenticate(user) and not is_system_account(user)


def login_username(request, credentials: dict | None) -> str | None:
    """The account name axes counts failures under: the submitted email, trimmed and case-folded, so that
    `Ada@Example.test` and `ada@example.test ` share one counter."""
    value = (credentials or {}).get("username")
    if value is None and request is not None:
        value = request.POST.get("username")
    value = (value or "").strip().casefold()
    return value or None


def client_ip(request) -> str | None:
    """The address log-in failures are counted under (axes' AXES_CLIENT_IP_CALLABLE).

    With LOGIN_PROXY_COUNT = N trusted reverse proxies in front, each appending the address it saw to
    X-Forwarded-For, the client is the N-th entry from the right; entries further left are whatever the client
    wrote, so they are never used. Without proxies, REMOTE_ADDR."""
    hops = settings.LOGIN_PROXY_COUNT
    if hops:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR")


def lockout_response(request, original_response=None, credentials=None):
    """The page a locked-out client sees (axes' AXES_LOCKOUT_CALLABLE): 429, in the app's style, with Retry-After."""
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else None
    context = {
        "minutes": math.ceil(seconds / 60) if seconds else None,
        "retry_at": timezone.now() + cool_off if cool_off else None,
    }
    response = render(request, "konnect_admin/login_locked_out.html", context, status=429)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response


def record_lockout(sender, request, username: str | None, ip_address: str | None, **kwargs) -> None:
    """axes' `user_locked_out` receiver: one audit event per organization of the account, per client address and
    cool-off period (axes signals every refused attempt; the log gets the lockout, not each retry).

    An unknown account gets one platform-level event (organization None) per address and period, without the
    submitted name (people type passwords into the email field)."""
    cool_off = get_cool_off(request)
    since = timezone.now() - cool_off if cool_off else None
    details = {"ip_address": ip_address or "", "failures": getattr(request, "axes_failures_since_start", None),
               "lockout_minutes": math.ceil(cool_off.total_seconds() / 60) if cool_off else None}
    users = list(get_user_model().objects.filter(email__iexact=username)) if username else []
    if not users:
        _record_once(organization=None, user=None, details={**details, "account": "unknown"}, since=since)
    for user in users:
        organizations = list(Organization.objects.filter(memberships__user=user)) or [None]
        for organization in organizations:
            _record_once(organization=organization, user=user, details=details, since=since)


def _record_once(*, organization, user, details: dict, since) -> None:
    recent = AuditEvent.objects.filter(
        action=LOCKOUT_ACTION, organization=organization, target_id=str(user.pk) if user else "",
        details__ip_address=details["ip_address"],
    )
    if since is not None:
        recent = recent.filter(created_at__gte=since)
    if recent.exists():
        return
    audit_record(actor=None, organization=organization, action=LOCKOUT_ACTION, target=user, details=details)
