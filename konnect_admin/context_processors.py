from konnect_admin import navigation
from konnect_admin.permissions import Action, can
from konnect_admin.selectors import organizations_of


def organization(request):
    user = getattr(request, "user", None)
    current = getattr(request, "organization", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "current_organization": current,
        "user_organizations": organizations_of(user=user),
        "can_view_org_settings": current is not None and can(user, Action.MEMBERS_VIEW, current),
        "org_settings_menu": navigation.collect(navigation.ORG_SETTINGS_MENU, request) if current else [],
        "user_menu": navigation.collect(navigation.USER_MENU, request),
        "org_banners": navigation.collect(navigation.BANNERS, request) if current and not _is_fragment(request) else [],
    }


def _is_fragment(request) -> bool:
    """An htmx fragment does not render the page's banners (skip their queries); a view whose fragment updates
    the banner region out of band collects them itself (navigation.collect(navigation.BANNERS, request))."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted
