from django.apps import AppConfig


class DebuggerConfig(AppConfig):
    name = "debugger"
    default_auto_field = "django.db.models.BigAutoField"
