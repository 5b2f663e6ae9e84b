from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path, register_converter

from konnect_admin.api import api_not_found, api_urls, api_v0, api_v1, api_v2
from konnect_admin.middleware import organization_not_required
from konnect_admin.views import (
    audit,
    control_planes,
    dashboard,
    errors,
    invitations,
    members,
    password_reset,
    system_accounts,
    tokens,
)


class KonnectRegionConverter:
    regex = "us|eu|au|me|in|sg"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(KonnectRegionConverter, "konnect_region")

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("login/", auth_views.LoginView.as_view(template_name="konnect_admin/login.html"), name="login"),
    path("logout/", organization_not_required(auth_views.LogoutView.as_view()), name="logout"),
    # The one way a password is set for a user: the link e-mailed to them (asked for on the login page, or sent
    # by the operator console).
    path("password-reset/", password_reset.password_reset_request, name="password_reset"),
    path("password-reset/sent/", password_reset.password_reset_sent, name="password_reset_sent"),
    path("password-reset/<uidb64>/<token>/",
         auth_views.PasswordResetConfirmView.as_view(template_name="konnect_admin/password_reset_confirm.html"),
         name="password_reset_confirm"),
    path("password-reset/done/",
         auth_views.PasswordResetCompleteView.as_view(template_name="konnect_admin/password_reset_complete.html"),
         name="password_reset_complete"),
    path("organization/switch/", dashboard.organization_switch, name="organization_switch"),
    path("control-planes/", control_planes.control_plane_list, name="control_plane_list"),
    path("control-planes/new/", control_planes.control_plane_create, name="control_plane_create"),
    path("control-planes/<uuid:pk>/", control_planes.control_plane_detail, name="control_plane_detail"),
    path("control-planes/<uuid:pk>/data-plane-tokens/", tokens.data_plane_token_create, name="data_plane_token_create"),
    path("control-planes/<uuid:pk>/data-plane-tokens/<int:token_pk>/revoke/", tokens.data_plane_token_revoke,
         name="data_plane_token_revoke"),
    path("account/tokens/", tokens.access_token_list, name="access_token_list"),
    path("account/tokens/new/", tokens.access_token_create, name="access_token_create"),
    path("account/tokens/<int:pk>/revoke/", tokens.access_token_revoke, name="access_token_revoke"),
    path("organization/members/", members.member_list, name="member_list"),
    path("organization/members/<int:pk>/remove/", members.member_remove, name="member_remove"),
    path("organization/members/roles/", members.role_assign, name="role_assign"),
    path("organization/members/roles/<int:pk>/revoke/", members.role_revoke, name="role_revoke"),
    path("organization/members/teams/", members.team_membership, name="team_membership"),
    path("organization/members/invitations/", invitations.invitation_create, name="invitation_create"),
    path("organization/members/invitations/<int:pk>/resend/", invitations.invitation_resend, name="invitation_resend"),
    path("organization/members/invitations/<int:pk>/revoke/", invitations.invitation_revoke, name="invitation_revoke"),
    # The e-mailed link: a new person signs up here, someone with an account logs in and joins.
    path("invitations/<str:token>/", invitations.invitation_accept, name="invitation_accept"),
    path("organization/audit-log/", audit.audit_log, name="audit_log"),
    path("organization/system-accounts/", system_accounts.system_account_list, name="system_account_list"),
    path("organization/system-accounts/<uuid:pk>/", system_accounts.system_account_detail,
         name="system_account_detail"),
    path("organization/system-accounts/<uuid:pk>/edit/", system_accounts.system_account_update,
         name="system_account_update"),
    path("organization/system-accounts/<uuid:pk>/teams/", system_accounts.system_account_teams,
         name="system_account_teams"),
    path("organization/system-accounts/<uuid:pk>/roles/", system_accounts.system_account_role_assign,
         name="system_account_role_assign"),
    path("organization/system-accounts/<uuid:pk>/roles/<int:assignment_pk>/revoke/",
         system_accounts.system_account_role_revoke, name="system_account_role_revoke"),
    path("organization/system-accounts/<uuid:pk>/tokens/", system_accounts.system_account_token_create,
         name="system_account_token_create"),
    path("organization/system-accounts/<uuid:pk>/tokens/<int:token_pk>/revoke/",
         system_accounts.system_account_token_revoke, name="system_account_token_revoke"),
    path("organization/system-accounts/<uuid:pk>/delete/", system_accounts.system_account_delete,
         name="system_account_delete"),
    path("", include("encryption_keys.urls")),
    path("", include("debugger.urls")),
    path("", include("vault.urls")),
    path("api/<konnect_region:region>/v0/", api_urls(api_v0)),
    path("api/<konnect_region:region>/v1/", api_urls(api_v1)),
    path("api/<konnect_region:region>/v2/", api_urls(api_v2)),
    # Last of the API: whatever no version serves (unknown region or version, a trailing slash) is a JSON 404.
    re_path(r"^api(?:/.*)?$", api_not_found),
    path("platform-admin/", admin.site.urls),
]

handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.page_not_found
handler500 = errors.server_error
