import uuid

from django.core.validators import MinLengthValidator
from django.db import models

from konnect_admin.models.organizations import Organization


class Region(models.TextChoices):
    """Konnect geos."""

    US = "us", "US"
    EU = "eu", "EU"
    AU = "au", "AU"
    ME = "me", "ME"
    IN = "in", "IN"
    SG = "sg", "SG (beta)"


class ClusterType(models.TextChoices):
    CONTROL_PLANE = "CLUSTER_TYPE_CONTROL_PLANE", "Self-managed hybrid"
    K8S_INGRESS = "CLUSTER_TYPE_K8S_INGRESS_CONTROLLER", "Kubernetes Ingress Controller"
    GROUP = "CLUSTER_TYPE_CONTROL_PLANE_GROUP", "Control plane group"
    SERVERLESS = "CLUSTER_TYPE_SERVERLESS", "Serverless"


class ControlPlane(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="control_planes")
    region = models.CharField(max_length=2, choices=Region)
    name = models.CharField(max_length=256, validators=[MinLengthValidator(2)])
    description = models.TextField(max_length=2048, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    cluster_type = models.CharField(max_length=48, choices=ClusterType, default=ClusterType.CONTROL_PLANE)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        "konnect_admin.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "region", "name"], name="unique_control_plane_name")
        ]
        ordering = ["name"]

    def __str__(self):
        return self.name
