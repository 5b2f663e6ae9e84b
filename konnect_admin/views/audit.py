from django.views.decorators.http import require_GET

from konnect_admin import selectors
from konnect_admin.views.pages import paginate, render_page


@require_GET
def audit_log(request):
    action = request.GET.get("action", "").strip()
    events = selectors.audit_event_list(user=request.user, organization=request.organization, action_prefix=action)
    context = {"page": paginate(request, events, per_page=50), "action": action}
    return render_page(request, "konnect_admin/audit_log.html", context, partial="events")
