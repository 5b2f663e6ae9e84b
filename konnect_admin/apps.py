from django.apps import AppConfig


class KonnectAdminConfig(AppConfig):
    name = "konnect_admin"
    verbose_name = "Konnect platform"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from konnect_admin import navigation
        from konnect_admin.sections import access_tokens_menu, data_plane_tokens_section, system_accounts_menu

        navigation.USER_MENU.append(access_tokens_menu)
        navigation.ORG_SETTINGS_MENU.append(system_accounts_menu)
        navigation.CONTROL_PLANE_SECTIONS.append(data_plane_tokens_section)

        from axes.signals import user_locked_out

        from konnect_admin.authentication import record_lockout

        user_locked_out.connect(record_lockout, dispatch_uid="konnect_admin.record_lockout")
