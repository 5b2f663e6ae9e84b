from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from konnect_admin import selectors, services
from konnect_admin.forms import RoleAssignmentForm, TeamMembershipForm
from konnect_admin.models import Membership, RoleAssignment, Team
from konnect_admin.permissions import Action, can, require
from konnect_admin.views.pages import paginate, render_page


def _members_context(request, form=None):
    organization = request.organization
    memberships = selectors.member_list(user=request.user, organization=organization)
    return {
        "page": paginate(request, memberships),
        "teams": Team.objects.filter(organization=organization).prefetch_related("members"),
        "assignments": RoleAssignment.objects.filter(organization=organization).select_related("user", "control_plane"),
        "can_manage": can(request.user, Action.MEMBERS_MANAGE, organization),
        "form": form or RoleAssignmentForm(organization=organization),
        "team_form": TeamMembershipForm(organization=organization),
    }


@require_GET
def member_list(request):
    return render_page(request, "konnect_admin/members.html", _members_context(request), partial="roles")


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
    if form.is_valid():
        services.role_assign(organization=request.organization, actor=request.user, **form.cleaned_data)
        form = None
    context = _members_context(request, form)
    status = 200 if form is None else 422 if request.htmx else 400
    if not request.htmx and form is None:
        return redirect("member_list")
    return render_page(request, "konnect_admin/members.html", context, partial="roles", status=status)


@require_POST
def role_revoke(request, pk):
    assignment = get_object_or_404(RoleAssignment, pk=pk, organization=request.organization)
    services.role_revoke(organization=request.organization, actor=request.user, assignment=assignment)
    if request.htmx:
        return render_page(request, "konnect_admin/members.html", _members_context(request), partial="roles")
    return redirect("member_list")


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
        messages.error(request, "Choose a member and a team.")
    return redirect("member_list")
