from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from konnect_admin.models import (
    AuditEvent,
    ControlPlane,
    Membership,
    Organization,
    RoleAssignment,
    Team,
    User,
)

admin.site.site_header = "Konnect Admin — platform operations"
admin.site.site_title = "Konnect Admin"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows change only through the app's services: the operator reads here (and deletes where `deletable`)."""

    deletable = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return self.deletable and super().has_delete_permission(request, obj)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "state", "retention_days", "member_count", "created_at"]
    list_filter = ["state"]
    search_fields = ["name", "id"]
    inlines = [MembershipInline]

    @admin.display(description="members")
    def member_count(self, obj):
        return obj.memberships.count()


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
    search_fields = ["email", "first_name", "last_name"]
    ordering = ["email"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Personal info", {"fields": ["first_name", "last_name"]}),
        ("Permissions", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "predefined_role"]
    list_filter = ["predefined_role", "organization"]
    search_fields = ["name", "organization__name"]


@admin.register(RoleAssignment)
class RoleAssignmentAdmin(admin.ModelAdmin):
    list_display = ["user", "role", "target", "organization", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__email", "control_plane__name"]
    list_select_related = ["user", "organization", "control_plane"]

    @admin.display(description="target")
    def target(self, obj):
        return obj.target_label


@admin.register(ControlPlane)
class ControlPlaneAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "region", "cluster_type", "created_at"]
    list_filter = ["region", "cluster_type", "organization"]
    search_fields = ["name", "id", "organization__name"]
    readonly_fields = ["id", "created_at"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "organization", "actor_label", "action", "target_label"]
    list_filter = ["action", "organization"]
    search_fields = ["action", "actor_label", "target_label", "target_id"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
