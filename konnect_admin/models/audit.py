from django.core.exceptions import PermissionDenied
from django.db import models

from konnect_admin.models.organizations import Organization, User


class AuditEventImmutable(PermissionDenied):
    """An audit event is append-only: nobody — operator, service or script — edits or deletes one."""


class AuditEventQuerySet(models.QuerySet):
    def delete(self):
        raise AuditEventImmutable("Audit events cannot be deleted.")

    def update(self, **kwargs):
        raise AuditEventImmutable("Audit events cannot be changed.")

    delete.queryset_only = True
    update.queryset_only = True


class AuditEvent(models.Model):
    """Who did what to which object, when. Details never hold plaintext of encrypted data.

    Append-only: `delete()`, `save()` of an existing row and the queryset's `delete()`/`update()` raise.
    Rows go only with their organization (deleting an organization cascades through Django's deletion
    collector, which uses the plain base manager), and a deleted actor becomes `actor=None` the same way,
    `actor_label` keeping who it was.
    """

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events"
    )
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=254, blank=True, help_text="Kept when the user is deleted.")
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self):
        return f"{self.actor_label or 'system'} {self.action} {self.target_label}".strip()

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AuditEventImmutable("Audit events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditEventImmutable("Audit events cannot be deleted.")
