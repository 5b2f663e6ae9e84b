"""Invitations: sent, resent and revoked from the Members page; accepted through the e-mailed link."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from konnect_admin import invitations
from konnect_admin.forms import AcceptInvitationForm, InvitationForm
from konnect_admin.middleware import SESSION_KEY, organization_not_required
from konnect_admin.models import Invitation, User
from konnect_admin.permissions import Action, require
from konnect_admin.views.members import members_page


def _base_url(request) -> str:
    return request.build_absolute_uri("/")


@require_POST
def invitation_create(request):
    require(request.user, Action.MEMBERS_MANAGE, request.organization)
    form = InvitationForm(request.POST, organization=request.organization)
    if not form.is_valid():
        return members_page(request, invitation_form=form, status=422 if request.htmx else 400)
    sent, refused = [], []
    for email in form.cleaned_data["emails"]:
        try:
            invitations.invitation_create(organization=request.organization, actor=request.user, email=email,
                                          teams=form.cleaned_data["teams"], base_url=_base_url(request))
            sent.append(email)
        except invitations.InvitationRefused as error:
            refused.append(str(error))
    if sent:
        messages.success(request, f"Invitation sent to {', '.join(sent)}.")
    for reason in refused:
        messages.error(request, reason)
    return redirect("member_list")


@require_POST
def invitation_resend(request, pk):
    invitation = get_object_or_404(Invitation, pk=pk, organization=request.organization)
    try:
        invitations.invitation_resend(invitation=invitation, actor=request.user, base_url=_base_url(request))
    except invitations.InvitationRefused as error:
        return _after(request, "error", str(error))
    return _after(request, "success", f"Invitation sent again to {invitation.email}; the earlier link no longer works.")


@require_POST
def invitation_revoke(request, pk):
    invitation = get_object_or_404(Invitation, pk=pk, organization=request.organization)
    try:
        invitations.invitation_revoke(invitation=invitation, actor=request.user)
    except invitations.InvitationRefused as error:
        return _after(request, "error", str(error))
    return _after(request, "success", f"Invitation of {invitation.email} revoked: its link no longer works.")


def _after(request, level: str, text: str):
    """htmx: the pending-invitations region with the outcome in it; without JS: back to the page, with a message."""
    if request.htmx:
        return members_page(request, partial="invitations", notice={"level": level, "text": text})
    getattr(messages, level)(request, text)
    return redirect("member_list")


# As Django's password-reset confirmation does: the link's token moves into the session and the browser goes on
# to a URL without it, so it is not in the Referer, nor in a log line about a form error or a refused attempt.
SESSION_KEY_OF_TOKEN = "_invitation_token"  # noqa: S105 — a session key, not a secret
TOKEN_IN_SESSION = "accept"  # noqa: S105 — the URL placeholder


@login_not_required
@organization_not_required
@require_http_methods(["GET", "POST"])
def invitation_accept(request, token):
    """A new person sets a name and password; someone with an account for the invited address logs in and joins."""
    if token != TOKEN_IN_SESSION:
        request.session[SESSION_KEY_OF_TOKEN] = token
        return redirect("invitation_accept", token=TOKEN_IN_SESSION)
    token = request.session.get(SESSION_KEY_OF_TOKEN, "")
    try:
        invitation = invitations.invitation_find(token=token)
    except invitations.InvitationUnusable as unusable:
        return _unusable(request, unusable)
    mode, form = _accept_mode(request, invitation), None
    if mode == "sign_up":
        form = AcceptInvitationForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and mode in ("join", "sign_up") and (form is None or form.is_valid()):
        return _accept(request, token, form)
    context = {"invitation": invitation, "teams": invitation.teams.all(), "mode": mode, "form": form}
    return render(request, "konnect_admin/invitation_accept.html", context, status=400 if form and form.errors else 200)


def _accept_mode(request, invitation) -> str:
    if request.user.is_authenticated:
        return "join" if request.user.email.lower() == invitation.email.lower() else "wrong_account"
    return "log_in" if User.objects.filter(email__iexact=invitation.email).exists() else "sign_up"


def _accept(request, token, form):
    fields = {} if form is None else {"first_name": form.cleaned_data["first_name"],
                                      "last_name": form.cleaned_data["last_name"],
                                      "password": form.cleaned_data["password1"]}
    try:
        invitation, user = invitations.invitation_accept(
            token=token, user=request.user if form is None else None, **fields)
    except invitations.InvitationUnusable as unusable:
        return _unusable(request, unusable)
    except invitations.InvitationRefused as error:
        messages.error(request, str(error))
        return redirect("invitation_accept", token=TOKEN_IN_SESSION)
    if form is not None:
        login(request, user, backend="konnect_admin.authentication.EmailPasswordBackend")
    request.session.pop(SESSION_KEY_OF_TOKEN, None)
    request.session[SESSION_KEY] = str(invitation.organization_id)
    messages.success(request, f"Welcome to {invitation.organization.name}.")
    return redirect("dashboard")


def _unusable(request, unusable: invitations.InvitationUnusable):
    status = 404 if unusable.reason == "unknown" else 410
    return render(request, "konnect_admin/invitation_unusable.html",
                  {"reason": unusable.reason, "message": str(unusable)}, status=status)
