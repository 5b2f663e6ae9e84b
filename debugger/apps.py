from django.apps import AppConfig


class DebuggerConfig(AppConfig):
    name = "debugger"
    verbose_name = "Debugger"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from debugger.navigation import debugger_section
        from konnect_admin import navigation

        navigation.CONTROL_PLANE_SECTIONS.append(debugger_section)
