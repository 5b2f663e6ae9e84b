from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from konnect_admin import navigation
from konnect_admin.forms import OrganizationSwitchForm
from konnect_admin.middleware import SESSION_KEY
from konnect_admin.models import AuditEvent
from konnect_admin.permissions import Action, can
from konnect_admin.selectors import control_plane_list, organizations_of


@require_GET
def dashboard(request):
    organization = request.organization  # never None here: CurrentOrganizationMiddleware explains instead
    context = {
        "control_planes": control_plane_list(user=request.user, organization=organization)[:10],
        "recent_events": AuditEvent.objects.filter(organization=organization)[:8]
        if can(request.user, Action.AUDIT_VIEW, organization)
        else None,
        "dashboard_cards": navigation.collect(navigation.DASHBOARD_CARDS, request),
    }
    return render(request, "konnect_admin/dashboard.html", context)


@require_POST
def organization_switch(request):
    form = OrganizationSwitchForm(request.POST)
    if form.is_valid() and organizations_of(user=request.user).filter(pk=form.cleaned_data["organization"]).exists():
        request.session[SESSION_KEY] = str(form.cleaned_data["organization"])
    else:
        messages.error(request, "You are not a member of that organization.")
    return redirect("dashboard")
