"""Reactivate an organization (audited in its log as done via manage.py).

    manage.py reactivate_organization <id or exact name> [--reason "…"]
"""

from konnect_admin.management.organization_state import OrganizationStateCommand
from konnect_admin.services import organization_reactivate


class Command(OrganizationStateCommand):
    help = "Reactivate an organization; written to its audit log."
    service = organization_reactivate
    changed_word = "reactivated"
    unchanged = "was already active"
