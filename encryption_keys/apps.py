from django.apps import AppConfig


class EncryptionKeysConfig(AppConfig):
    name = "encryption_keys"
    verbose_name = "Encryption keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.core import checks

        from encryption_keys import providers, views
        from konnect_admin import navigation

        checks.register(providers.check_settings)

        navigation.ORG_SETTINGS_MENU.append(views.settings_menu)
        navigation.BANNERS.append(views.unhealthy_key_banners)
        navigation.DASHBOARD_CARDS.append(views.dashboard_card)
