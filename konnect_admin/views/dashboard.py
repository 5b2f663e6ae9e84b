from datetime import timedelta

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from konnect_admin import navigation, selectors
from konnect_admin.audit_display import ROUTINE_ACTIONS, describe
from konnect_admin.forms import OrganizationSwitchForm
from konnect_admin.middleware import SESSION_KEY
from konnect_admin.permissions import Action, can
from konnect_admin.selectors import control_plane_list, organizations_of

ROUTINE_WINDOW = timedelta(hours=24)


@require_GET
def dashboard(request):
    organization = request.organization  # never None here: CurrentOrganizationMiddleware explains instead
    context = {
        "control_planes": control_plane_list(user=request.user, organization=organization)[:10],
        "dashboard_cards": navigation.collect(navigation.DASHBOARD_CARDS, request),
    }
    if can(request.user, Action.AUDIT_VIEW, organization):
        context |= _recent_activity(organization, viewer=request.user)
    return render(request, "konnect_admin/dashboard.html", context)


def _recent_activity(organization, *, viewer) -> dict:
    """People's actions and what the system did that matters; its routine checks are counted, not listed."""
    events = selectors.recent_activity(organization=organization, routine=ROUTINE_ACTIONS)
    routine = selectors.routine_activity_count(organization=organization, routine=ROUTINE_ACTIONS,
                                               since=timezone.now() - ROUTINE_WINDOW)
    return {"recent_events": describe(events, organization=organization, viewer=viewer), "routine_events": routine}


@require_POST
def organization_switch(request):
    form = OrganizationSwitchForm(request.POST)
    if form.is_valid() and organizations_of(user=request.user).filter(pk=form.cleaned_data["organization"]).exists():
        request.session[SESSION_KEY] = str(form.cleaned_data["organization"])
    else:
        messages.error(request, "You are not a member of that organization.")
    return redirect("dashboard")
