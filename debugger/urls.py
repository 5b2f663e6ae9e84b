from django.urls import path, register_converter

from debugger import views
from debugger.models import PayloadKind


class TraceIdConverter:
    regex = "[0-9a-f]{32}"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


class PayloadKindConverter:
    regex = "|".join(PayloadKind.values)

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(TraceIdConverter, "trace_id")
register_converter(PayloadKindConverter, "payload_kind")

SESSION = "control-planes/<uuid:cp>/debugger/<uuid:pk>/"

urlpatterns = [
    path("control-planes/<uuid:cp>/debugger/", views.session_list, name="debug_session_list"),
    path("control-planes/<uuid:cp>/debugger/new/", views.session_create, name="debug_session_create"),
    path(SESSION, views.session_detail, name="debug_session_detail"),
    path(SESSION + "logs/", views.session_logs, name="debug_session_logs"),
    path(SESSION + "cancel/", views.session_cancel, name="debug_session_cancel"),
    path(SESSION + "delete/", views.session_delete, name="debug_session_delete"),
    path(SESSION + "traces/<trace_id:trace_id>/", views.trace_detail, name="debug_trace_detail"),
    path(SESSION + "traces/<trace_id:trace_id>/payloads/<payload_kind:kind>/", views.payload_panel,
         name="debug_payload_panel"),
]
