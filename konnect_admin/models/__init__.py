from konnect_admin.models.access import Role, RoleAssignment, Team, TeamMembership
from konnect_admin.models.audit import AuditEvent
from konnect_admin.models.control_planes import ClusterType, ControlPlane, Region
from konnect_admin.models.invitations import Invitation
from konnect_admin.models.organizations import Membership, Organization, User
from konnect_admin.models.schedule import ScheduledRun
from konnect_admin.models.system_accounts import SystemAccount, SystemAccountAccessToken
from konnect_admin.models.tokens import DataPlaneToken, PersonalAccessToken

__all__ = [
    "AuditEvent",
    "ClusterType",
    "ControlPlane",
    "DataPlaneToken",
    "Invitation",
    "Membership",
    "Organization",
    "PersonalAccessToken",
    "Region",
    "Role",
    "RoleAssignment",
    "ScheduledRun",
    "SystemAccount",
    "SystemAccountAccessToken",
    "Team",
    "TeamMembership",
    "User",
]
