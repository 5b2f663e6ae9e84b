"""Suspend an organization (audited in its log as done via manage.py).

    manage.py suspend_organization <id or exact name> [--reason "…"]
"""

from konnect_admin.management.organization_state import OrganizationStateCommand
from konnect_admin.services import organization_suspend


class Command(OrganizationStateCommand):
    help = "Suspend an organization; written to its audit log."
    service = organization_suspend
    changed_word = "suspended"
    unchanged = "was already suspended"
