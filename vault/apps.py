from django.apps import AppConfig


class VaultConfig(AppConfig):
    name = "vault"
    verbose_name = "Vault (Config Stores)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_save

        from konnect_admin import navigation
        from konnect_admin.models import ControlPlane
        from vault.protection import record_vault_protection
        from vault.sections import vault_section

        # Which key protects a control plane's vault is decided when the control plane is created.
        post_save.connect(record_vault_protection, sender=ControlPlane, dispatch_uid="vault.record_vault_protection")
        navigation.CONTROL_PLANE_SECTIONS.append(vault_section)
