from django.apps import AppConfig


class KonnectAdminConfig(AppConfig):
    name = "konnect_admin"
    verbose_name = "Konnect platform"
    default_auto_field = "django.db.models.BigAutoField"
