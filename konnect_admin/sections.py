"""This app's entries in the navigation extension points."""

from django.urls import reverse

from konnect_admin.forms import DATA_PLANE_NAME_HINT, TokenForm
from konnect_admin.models import DataPlaneToken
from konnect_admin.permissions import Action, can
from konnect_admin.tokens import data_plane_token_lifetime


def access_tokens_menu(request):
    if request.organization is None:
        return None
    return {"label": "API tokens", "url": reverse("access_token_list")}


def system_accounts_menu(request):
    if request.organization is None or not can(request.user, Action.MEMBERS_MANAGE, request.organization):
        return None
    return {"label": "System accounts", "url": reverse("system_account_list")}


def data_plane_tokens_section(request, control_plane):
    if not can(request.user, Action.CONTROL_PLANE_ADMIN, control_plane):
        return None
    return {
        "template": "konnect_admin/data_plane_tokens.html#tokens",
        "control_plane": control_plane,
        "data_plane_tokens": DataPlaneToken.objects.filter(control_plane=control_plane),
        "form": TokenForm(lifetime=data_plane_token_lifetime(), name_hint=DATA_PLANE_NAME_HINT),
    }
