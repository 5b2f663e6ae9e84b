from konnect_admin.permissions import Action, can
from konnect_admin.selectors import organizations_of


def organization(request):
    user = getattr(request, "user", None)
    current = getattr(request, "organization", None)
    if user is None or not user.is_authenticated:
        return {}
    context = {
        "current_organization": current,
        "user_organizations": organizations_of(user=user),
        "can_view_org_settings": current is not None and can(user, Action.KEY_VIEW, current),
    }
    for provider in BANNER_PROVIDERS:
        context.setdefault("org_banners", []).extend(provider(request) or [])
    return context


# Other apps append callables `(request) -> list[dict(level, title, message, link)]` here.
BANNER_PROVIDERS: list = []
