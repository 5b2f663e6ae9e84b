"""A model used only by the encryption-core tests, with one field of each encrypted kind."""

import uuid

from django.db import models

from encryption_keys.fields import EncryptedBinaryField, EncryptedJSONField, EncryptedTextField
from encryption_keys.keyring import EncryptionScope


class SealedNote(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("konnect_admin.Organization", on_delete=models.CASCADE)
    region = models.CharField(max_length=2, default="us")
    scope_ref = models.CharField(max_length=100, default="notes")  # as long as DataKey.scope_ref
    title = models.CharField(max_length=100, blank=True)
    text = EncryptedTextField(null=True)
    data = EncryptedJSONField(null=True)
    blob = EncryptedBinaryField(null=True)

    def __str__(self):
        return self.title

    def encryption_scope(self) -> EncryptionScope:
        return EncryptionScope(self.organization_id, self.region, "debugger.payload", self.scope_ref)
