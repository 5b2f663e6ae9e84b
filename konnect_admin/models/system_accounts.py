"""System accounts (Konnect's non-human identities for automation) and their `spat_…` access tokens.

A system account is backed by a User row of its own (no usable password, an `.invalid` address), a member of
exactly one organization: teams, role assignments and permissions.can/require then work for it exactly as for a
person, and an API request authenticated by its token runs as that User. It never signs in to the pages
(authentication.EmailPasswordBackend refuses it).
"""

import uuid

from django.db import models

from konnect_admin.models.organizations import Organization, User
from konnect_admin.models.tokens import BaseToken


class SystemAccount(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="system_accounts")
    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="system_account", editable=False)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=250, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="unique_system_account_name")]
        ordering = ["name"]

    def __str__(self):
        return self.name


class SystemAccountAccessToken(BaseToken):
    """`spat_…`: acts as its system account, in the account's organization, with the account's roles."""

    PREFIX = "spat"

    system_account = models.ForeignKey(SystemAccount, on_delete=models.CASCADE, related_name="access_tokens")
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta(BaseToken.Meta):
        pass

    def __str__(self):
        return f"{self.name} ({self.hint}…)"
