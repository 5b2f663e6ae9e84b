from django.contrib import messages
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequiredMiddleware
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from konnect_admin.models import Organization
from konnect_admin.permissions import grants_for
from konnect_admin.problems import is_api_request

SESSION_KEY = "organization_id"
# URL namespaces with their own access rules: the JSON APIs (bearer tokens) and the operator console.
OWN_ACCESS_RULES = frozenset({"ninja", "admin"})


def organization_not_required(view_func):
    """Marks a page that works for a signed-in user without an active organization."""
    view_func.organization_required = False
    return view_func


class CurrentOrganizationMiddleware:
    """Sets `request.organization` (the one chosen in the switcher, among the user's active ones) and
    `request.grants`; a signed-in user with none (no membership yet, or only suspended organizations) gets the
    "No organization yet" page from every page, instead of each view meeting `request.organization is None`.
    Pages that need no organization: `login_not_required` ones and `organization_not_required` ones."""

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

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.organization is not None or not request.user.is_authenticated:
            return None
        if not getattr(view_func, "login_required", True) or not getattr(view_func, "organization_required", True):
            return None
        if OWN_ACCESS_RULES.intersection(request.resolver_match.app_names):
            return None
        return no_organization(request)


def no_organization(request):
    if request.htmx:
        return HttpResponseClientRedirect(reverse("dashboard"))
    suspended = Organization.objects.filter(memberships__user=request.user).exclude(state=Organization.State.ACTIVE)
    return render(request, "konnect_admin/no_organization.html", {"suspended": suspended.exists()}, status=403)


class LoginRequiredMiddleware(DjangoLoginRequiredMiddleware):
    """Every page needs a login, except the JSON API, which authenticates bearer tokens itself."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if is_api_request(request):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class HtmxMessagesMiddleware:
    """Messages queued while answering an htmx fragment reach the page with it: the messages region is appended out
    of band, so a change made in place ("Role assigned.") says so at once instead of on the next full page. A client
    redirect keeps them for the page it loads."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        htmx = getattr(request, "htmx", None)
        if (not htmx or htmx.boosted or response.streaming or "HX-Redirect" in response
                or "HX-Location" in response or not response.get("Content-Type", "").startswith("text/html")):
            return response
        storage = messages.get_messages(request)
        if len(storage):
            response.content += render_to_string("includes/messages.html", {"messages": storage, "oob": True}).encode()
        return response
