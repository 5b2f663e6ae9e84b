from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from konnect_admin import invitations, selectors, services
from konnect_admin.forms import InvitationForm, RoleAssignmentForm, TeamMembershipForm
from konnect_admin.models import Membership, RoleAssignment, Team
from konnect_admin.permissions import Action, can, forget_grants, require
from konnect_admin.views.pages import paginate, render_page


def _members_context(request, form=None, invitation_form=None, notice=None):
    """People with their teams and direct roles; for Organization Admins, the forms and the pending invitations.
    `notice` is an outcome shown inside an htmx-swapped region (a full page shows Django messages instead)."""
    organization = request.organization
    page = paginate(request, selectors.member_list(user=request.user, organization=organization))
    users = [membership.user for membership in page.object_list]
    teams = Team.objects.filter(organization=organization).order_by("name")
    assignments = RoleAssignment.objects.filter(organization=organization).select_related("user", "control_plane")
    team_names = {}
    for team in teams.prefetch_related("members"):
        for member in team.members.all():
            team_names.setdefault(member.pk, []).append(team)
    roles = {}
    for assignment in assignments.filter(user__in=users):
        roles.setdefault(assignment.user_id, []).append(assignment)
    people = [{"membership": m, "teams": team_names.get(m.user_id, []), "roles": roles.get(m.user_id, [])}
              for m in page.object_list]
    can_manage = can(request.user, Action.MEMBERS_MANAGE, organization)
    return {
        "page": page, "people": people, "teams": teams, "assignments": assignments, "can_manage": can_manage,
        "form": form or RoleAssignmentForm(organization=organization),
        "team_form": TeamMembershipForm(organization=organization),
        "invitation_form": invitation_form or InvitationForm(organization=organization),
        "invitations": invitations.pending_invitations(organization=organization) if can_manage else [],
        "notice": notice,
    }


def members_page(request, *, partial: str = "roles", status: int = 200, **context):
    return render_page(request, "konnect_admin/members.html", _members_context(request, **context),
                       partial=partial, status=status)


@require_GET
def member_list(request):
    return members_page(request)


@require_http_methods(["GET", "POST"])
def member_remove(request, pk):
    """Remove a member (Organization Admins only); their roles, teams and access tokens go with the membership.

    GET asks first: how many data-plane tokens they created, revoked unless "keep" is ticked (an unticked box sends
    nothing, so a plain POST revokes them)."""
    membership = get_object_or_404(Membership.objects.select_related("user"), pk=pk, organization=request.organization)
    if request.method == "GET":
        return _member_remove_confirm(request, membership)
    try:
        services.member_remove(organization=request.organization, actor=request.user, user=membership.user,
                               revoke_data_plane_tokens=request.POST.get("keep_data_plane_tokens") != "on")
    except ValueError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{membership.user.email} removed: their roles, teams and access tokens are revoked.")
    if request.htmx:
        return HttpResponseClientRedirect(reverse("member_list"))
    return redirect("member_list")


def _member_remove_confirm(request, membership):
    require(request.user, Action.MEMBERS_MANAGE, request.organization)
    issued = selectors.data_plane_tokens_issued_by(organization=request.organization, user=membership.user)
    context = {"membership": membership, "data_plane_tokens": issued.count()}
    return render_page(request, "konnect_admin/member_remove.html", context, partial="confirm")


@require_POST
def role_assign(request):
    require(request.user, Action.MEMBERS_MANAGE, request.organization)
    form = RoleAssignmentForm(request.POST, organization=request.organization)
    text = None
    if form.is_valid():
        assignment = services.role_assign(organization=request.organization, actor=request.user, **form.cleaned_data)
        where = assignment.control_plane.name if assignment.control_plane_id else "all control planes"
        text, form = f"{assignment.get_role_display()} on {where} assigned to {assignment.user.email}.", None
    status = 200 if form is None else 422 if request.htmx else 400
    if not request.htmx and form is None:
        messages.success(request, text)
        return redirect("member_list")
    notice = {"level": "success", "text": text} if form is None else None
    return members_page(request, form=form, notice=notice, status=status)


@require_POST
def role_revoke(request, pk):
    assignment = get_object_or_404(RoleAssignment.objects.select_related("user"), pk=pk,
                                   organization=request.organization)
    try:
        services.role_revoke(organization=request.organization, actor=request.user, assignment=assignment)
    except services.LastOrganizationAdmin as error:
        level, text = "error", str(error)
    else:
        level, text = "success", f"{assignment.get_role_display()} revoked from {assignment.user.email}."
    target = _members_or_dashboard(request)
    if request.htmx and target == "member_list":
        return members_page(request, notice={"level": level, "text": text}, status=200 if level == "success" else 422)
    getattr(messages, level)(request, text)
    return HttpResponseClientRedirect(reverse(target)) if request.htmx else redirect(target)


@require_POST
def team_membership(request):
    require(request.user, Action.MEMBERS_MANAGE, request.organization)
    form = TeamMembershipForm(request.POST, organization=request.organization)
    if form.is_valid():
        try:
            services.team_membership_set(organization=request.organization, actor=request.user, **form.cleaned_data)
        except ValueError as error:
            messages.error(request, str(error))
        else:
            user, team = form.cleaned_data["user"], form.cleaned_data["team"]
            done = "added to" if form.cleaned_data["member"] else "removed from"
            messages.success(request, f"{user.email} {done} {team.name}.")
    else:
        messages.error(request, "Choose a person and a team.")
    return redirect(_members_or_dashboard(request))


def _members_or_dashboard(request) -> str:
    """Back to Members, or to the dashboard when the change took the actor's own right to see it."""
    forget_grants(request.user)
    return "member_list" if can(request.user, Action.MEMBERS_VIEW, request.organization) else "dashboard"
