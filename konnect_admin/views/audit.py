from django.views.decorators.http import require_GET

from konnect_admin import selectors
from konnect_admin.audit_display import describe
from konnect_admin.forms import AuditFilterForm
from konnect_admin.views.pages import paginate, render_page


@require_GET
def audit_log(request):
    """Filters live in the query string, so a filtered page is a link and pagination keeps them. An invalid filter
    (another organization's actor, a date range backwards) shows its error and no events."""
    organization = request.organization
    actors = selectors.audit_actor_labels(user=request.user, organization=organization)
    form = AuditFilterForm(request.GET or None, actors=actors)
    filters = form.cleaned_data if form.is_valid() else {}
    events = selectors.audit_event_list(user=request.user, organization=organization, **filters)
    if form.is_bound and not form.is_valid():
        events = events.none()
    page = paginate(request, events, per_page=50)
    context = {"form": form, "page": page, "events": describe(page.object_list, organization=organization, viewer=request.user),
               "filtered": any(filters.values())}
    return render_page(request, "konnect_admin/audit_log.html", context, partial="events")
