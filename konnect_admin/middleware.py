from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequiredMiddleware

from konnect_admin.models import Organization
from konnect_admin.permissions import grants_for

SESSION_KEY = "organization_id"


class CurrentOrganizationMiddleware:
    """Sets `request.organization` (the one chosen in the switcher, among the user's) and `request.grants`."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.organization = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            organizations = Organization.objects.filter(memberships__user=user, state=Organization.State.ACTIVE)
            chosen = request.session.get(SESSION_KEY)
            request.organization = (
                organizations.filter(pk=chosen).first() if chosen else None
            ) or organizations.order_by("name").first()
        request.grants = grants_for(user, request.organization)
        return self.get_response(request)


class LoginRequiredMiddleware(DjangoLoginRequiredMiddleware):
    """Every page needs a login, except the JSON API, which authenticates bearer tokens itself."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith("/api/"):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)
