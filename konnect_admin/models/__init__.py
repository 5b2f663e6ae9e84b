from konnect_admin.models.access import Role, RoleAssignment, Team, TeamMembership
from konnect_admin.models.audit import AuditEvent
from konnect_admin.models.control_planes import ClusterType, ControlPlane, Region
from konnect_admin.models.organizations import Membership, Organization, User

__all__ = [
    "AuditEvent",
    "ClusterType",
    "ControlPlane",
    "Membership",
    "Organization",
    "Region",
    "Role",
    "RoleAssignment",
    "Team",
    "TeamMembership",
    "User",
]
