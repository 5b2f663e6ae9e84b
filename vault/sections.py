"""The vault's section of the control plane page: which key protects its vault, and its config stores."""

from django.db.models import Count

from konnect_admin.permissions import Action, can
from vault.models import ConfigStore, Vault
from vault.protection import protection_summary


def vault_section(request, control_plane):
    if not can(request.user, Action.VAULT_VIEW, control_plane):
        return None
    protection = protection_summary(control_plane)
    return {
        "template": "vault/control_plane_section.html",
        "title": "Vault",
        "control_plane": control_plane,
        "protection": protection,
        "config_stores": ConfigStore.objects.filter(control_plane=control_plane).annotate(secret_count=Count("secrets")),
        "vault_count": Vault.objects.filter(control_plane=control_plane).count(),
        "can_protect": protection.can_migrate and can(request.user, Action.KEY_MANAGE, control_plane.organization),
    }
