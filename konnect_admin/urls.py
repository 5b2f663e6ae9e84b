from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from konnect_admin.views import audit, control_planes, dashboard, members

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("login/", auth_views.LoginView.as_view(template_name="konnect_admin/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("organization/switch/", dashboard.organization_switch, name="organization_switch"),
    path("control-planes/", control_planes.control_plane_list, name="control_plane_list"),
    path("control-planes/new/", control_planes.control_plane_create, name="control_plane_create"),
    path("control-planes/<uuid:pk>/", control_planes.control_plane_detail, name="control_plane_detail"),
    path("organization/members/", members.member_list, name="member_list"),
    path("organization/members/roles/", members.role_assign, name="role_assign"),
    path("organization/members/roles/<int:pk>/revoke/", members.role_revoke, name="role_revoke"),
    path("organization/members/teams/", members.team_membership, name="team_membership"),
    path("organization/audit-log/", audit.audit_log, name="audit_log"),
    path("platform-admin/", admin.site.urls),
]
