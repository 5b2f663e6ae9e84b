"""Teams and role assignments, modelled on Konnect's predefined teams and control-plane roles."""

from django.db import models

from konnect_admin.models.organizations import Organization, User


class Role(models.TextChoices):
    # Organization-wide roles (given by the predefined teams).
    ORG_ADMIN = "org_admin", "Organization Admin"
    ORG_ADMIN_READ_ONLY = "org_admin_read_only", "Organization Admin (Read Only)"
    # Control-plane roles: target one control plane, or all of them (`*`).
    CP_ADMIN = "cp_admin", "Control Plane Admin"
    CP_CREATOR = "cp_creator", "Control Plane Creator"
    CP_VIEWER = "cp_viewer", "Control Plane Viewer"
    DEBUG_SESSION_CREATOR = "debug_session_creator", "Debug Session Creator"
    VAULT_ADMIN = "vault_admin", "Vault Admin"
    # Organization-wide, for system accounts only: POST /materials/encryption and /materials/decryption.
    ENVELOPE_MATERIALS = "envelope_materials", "Envelope Materials"


ORGANIZATION_ROLES = frozenset({Role.ORG_ADMIN, Role.ORG_ADMIN_READ_ONLY})


class Team(models.Model):
    """A group of users. Predefined teams carry one role on every control plane (`*`)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=250, blank=True)
    predefined_role = models.CharField(max_length=32, choices=Role, blank=True)
    members = models.ManyToManyField(User, through="TeamMembership", related_name="teams")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="unique_team_name")]
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def is_predefined(self) -> bool:
        return bool(self.predefined_role)


class TeamMembership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE)
    user = models.ForeignKey(User, on_delete=models.CASCADE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="unique_team_membership")]

    def __str__(self):
        return f"{self.user} in {self.team}"


class RoleAssignment(models.Model):
    """A role given to a user directly, on one control plane or on all of them (control_plane null = `*`)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="role_assignments")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="role_assignments")
    role = models.CharField(max_length=32, choices=Role)
    control_plane = models.ForeignKey(
        "konnect_admin.ControlPlane", null=True, blank=True, on_delete=models.CASCADE, related_name="role_assignments"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user", "role", "control_plane"], name="unique_role_assignment"
            ),
            models.UniqueConstraint(
                fields=["organization", "user", "role"],
                condition=models.Q(control_plane__isnull=True),
                name="unique_role_assignment_all",
            ),
        ]
        ordering = ["user__email", "role"]

    def __str__(self):
        return f"{self.get_role_display()} on {self.target_label}"

    @property
    def target_label(self) -> str:
        return self.control_plane.name if self.control_plane_id else "*"
