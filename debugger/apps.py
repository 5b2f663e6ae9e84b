from django.apps import AppConfig


class DebuggerConfig(AppConfig):
    name = "debugger"
    verbose_name = "Debugger"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from debugger.demo import debugger_demo_step
        from debugger.navigation import debugger_section
        from konnect_admin import demo, navigation

        navigation.CONTROL_PLANE_SECTIONS.append(debugger_section)
        demo.DEMO_STEPS.append(debugger_demo_step)
