"""Extension points the apps fill in their AppConfig.ready(): menus, banners, page sections, dashboard cards.

Each entry is a callable taking the request (and an object where noted) and returning the item(s), or
None when the user may not see it — permission checks stay with the app that owns the page.
"""

from __future__ import annotations

# (request) -> {"label", "url"} | None  — under "Organization settings"
ORG_SETTINGS_MENU: list = []
# (request) -> {"label", "url"} | None  — the user's own menu (e.g. personal access tokens)
USER_MENU: list = []
# (request) -> list[{"level": "error|warning|info", "title", "message", "link", "link_label"}]
BANNERS: list = []
# (request) -> {"template", ...context} | None — cards on the dashboard
DASHBOARD_CARDS: list = []
# (request, control_plane) -> {"template", "title", ...context} | None — sections of the control plane page
CONTROL_PLANE_SECTIONS: list = []


def collect(providers, *args) -> list:
    items = []
    for provider in providers:
        result = provider(*args)
        if isinstance(result, list):
            items.extend(result)
        elif result:
            items.append(result)
    return items
