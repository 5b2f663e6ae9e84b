"""The platform operator's console. The operator is outside the tenant's trust boundary (DESIGN §2).

It reads non-secret metadata. It never edits what defines tenancy and access (memberships, teams, role
assignments, control planes, tokens, keys, audit events): every ModelAdmin here is read-only. What an operator
legitimately does — create, suspend or reactivate an organization, force-revoke a token, deactivate a user or
send them a password-reset link — is an admin action (or the organization add form) that calls the app's
service, which writes an event naming the operator in the tenant's own audit log.
tests/hardening/test_operator_console.py holds the rule for every registered model and action.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.auth.admin import GroupAdmin  # noqa: F401 — registers Group, so it can be unregistered below
from django.contrib.auth.models import Group

from konnect_admin import services, tokens
from konnect_admin.models import (
    AuditEvent,
    ControlPlane,
    DataPlaneToken,
    Membership,
    Organization,
    PersonalAccessToken,
    RoleAssignment,
    SystemAccountAccessToken,
    Team,
    TeamMembership,
    User,
)
from konnect_admin.organization_lifecycle import organization_create_with_admin

admin.site.site_header = "Konnect Admin — platform operations"
admin.site.site_title = "Konnect Admin"
# Operators are superusers made on a shell (createsuperuser); Django groups grant nothing in this app.
admin.site.unregister(Group)


def is_operator(request) -> bool:
    return request.user.is_active and request.user.is_superuser


class NoWrites:
    """No add, change or delete through the admin's forms, for model admins and inlines alike."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(NoWrites, admin.ModelAdmin):
    """Rows change only through the app's services: the operator reads here, and acts only through actions
    declared with `allowed_permissions=["operate"]`, each of which calls a service."""

    def has_operate_permission(self, request):
        return is_operator(request)


class ReadOnlyInline(NoWrites, admin.TabularInline):
    extra = 0
    can_delete = False


def report(modeladmin, request, done: int, verb: str, noun: str) -> None:
    modeladmin.message_user(request, f"{done} {noun}{'' if done == 1 else 's'} {verb}.", messages.SUCCESS)


# --- organizations -----------------------------------------------------------------------------------------


class ReasonActionForm(ActionForm):
    reason = forms.CharField(required=False, max_length=200, label="Reason (written to the tenant's audit log)")


class MembershipInline(ReadOnlyInline):
    model = Membership
    fields = ["user", "created_at"]
    readonly_fields = fields


class OrganizationAddForm(forms.ModelForm):
    admin_email = forms.EmailField(
        required=False, label="First Organization Admin (e-mail)",
        help_text="They get an invitation link by e-mail, choose their own password and join the Organization "
                  "Admin team. You do not become a member.")

    class Meta:
        model = Organization
        fields = ["name", "retention_days"]


@admin.register(Organization)
class OrganizationAdmin(ReadOnlyAdmin):
    """Created here through `organization_create_with_admin` (predefined teams, `organization.created`, the first
    Organization Admin invited by e-mail), never with the operator as a member. Suspended and reactivated through
    the services; never edited. Deleted only by `manage.py delete_organization` (shreds its data keys first)."""

    list_display = ["name", "state", "retention_days", "member_count", "created_at"]
    list_filter = ["state"]
    search_fields = ["name", "id"]
    action_form = ReasonActionForm
    actions = ["suspend", "reactivate"]

    def has_add_permission(self, request, obj=None):
        return is_operator(request)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = OrganizationAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "retention_days", "admin_email"]
        return ["id", "name", "state", "retention_days", "created_at"]

    def get_inlines(self, request, obj):
        return [MembershipInline] if obj is not None else []

    def save_model(self, request, obj, form, change):
        # Only the add form saves (there is no change permission): the service creates, the form's object
        # takes the created row's identity so the admin's log entry and redirect point at it.
        created, invitation = organization_create_with_admin(
            name=form.cleaned_data["name"], retention_days=form.cleaned_data["retention_days"],
            admin_email=form.cleaned_data["admin_email"], actor=request.user, via=services.OPERATOR_CONSOLE,
            base_url=request.build_absolute_uri("/"),
        )
        if invitation is not None:  # the link is for the invited person's eyes only: not shown here
            self.message_user(request, f"Invitation e-mailed to {invitation.email}.", messages.SUCCESS)
        obj.pk, obj.state, obj.created_at = created.pk, created.state, created.created_at
        obj._state.adding, obj._state.db = False, created._state.db

    @admin.display(description="members")
    def member_count(self, obj):
        return obj.memberships.count()

    @admin.action(description="Suspend selected organizations", permissions=["operate"])
    def suspend(self, request, queryset):
        self._each(request, queryset, services.organization_suspend, "suspended")

    @admin.action(description="Reactivate selected organizations", permissions=["operate"])
    def reactivate(self, request, queryset):
        self._each(request, queryset, services.organization_reactivate, "reactivated")

    def _each(self, request, queryset, service, verb: str) -> None:
        done = 0
        for organization in queryset:
            try:  # False when there was nothing to change
                done += service(organization=organization, actor=request.user, reason=request.POST.get("reason", ""))
            except ValueError as error:  # a deleted organization
                self.message_user(request, str(error), messages.ERROR)
        report(self, request, done, verb, "organization")


# --- users ---------------------------------------------------------------------------------------------------


@admin.register(User)
class UserAdmin(ReadOnlyAdmin):
    """No password field, no change-password form, no permission flags: a user sets their own password
    through an e-mailed link. Not Django's UserAdmin, whose `<id>/password/` view sets anyone's password."""

    list_display = ["email", "first_name", "last_name", "is_active", "is_staff", "last_login"]
    list_filter = ["is_active", "is_staff", "is_superuser"]
    search_fields = ["email", "first_name", "last_name"]
    ordering = ["email"]
    fields = ["email", "first_name", "last_name", "organizations", "is_active", "is_staff", "is_superuser",
              "last_login", "date_joined"]
    readonly_fields = fields
    actions = ["send_password_reset", "deactivate", "reactivate"]

    @admin.display(description="organizations")
    def organizations(self, obj):
        return ", ".join(m.organization.name for m in obj.memberships.select_related("organization")) or "—"

    def _each(self, request, queryset, service, verb: str, **kwargs) -> None:
        done = 0
        for user in queryset:
            try:  # deactivate/reactivate return False when there was nothing to change
                done += service(user=user, actor=request.user, **kwargs) is not False
            except ValueError as error:
                self.message_user(request, str(error), messages.ERROR)
            except OSError as error:  # smtplib's errors are OSErrors
                self.message_user(request, f"{user.email}: the e-mail could not be sent ({error}).", messages.ERROR)
        report(self, request, done, verb, "user")

    @admin.action(description="Send password reset link to the user's own e-mail", permissions=["operate"])
    def send_password_reset(self, request, queryset):
        self._each(request, queryset, services.user_password_reset_send, "sent a reset link",
                   domain=request.get_host(), use_https=request.is_secure())

    @admin.action(description="Deactivate selected users", permissions=["operate"])
    def deactivate(self, request, queryset):
        self._each(request, queryset, services.user_deactivate, "deactivated")

    @admin.action(description="Reactivate selected users", permissions=["operate"])
    def reactivate(self, request, queryset):
        self._each(request, queryset, services.user_reactivate, "reactivated")


# --- teams, roles, control planes, audit -------------------------------------------------------------------


class TeamMembershipInline(ReadOnlyInline):
    model = TeamMembership
    fields = ["user"]
    readonly_fields = fields
    verbose_name_plural = "members"


@admin.register(Team)
class TeamAdmin(ReadOnlyAdmin):
    list_display = ["name", "organization", "predefined_role"]
    list_filter = ["predefined_role", "organization"]
    search_fields = ["name", "organization__name"]
    fields = ["organization", "name", "description", "predefined_role"]
    inlines = [TeamMembershipInline]


@admin.register(RoleAssignment)
class RoleAssignmentAdmin(ReadOnlyAdmin):
    list_display = ["user", "role", "target", "organization", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__email", "control_plane__name"]
    list_select_related = ["user", "organization", "control_plane"]

    @admin.display(description="target")
    def target(self, obj):
        return obj.target_label


@admin.register(ControlPlane)
class ControlPlaneAdmin(ReadOnlyAdmin):
    """Organization and region are what the control plane's data is encrypted for: never editable."""

    list_display = ["name", "organization", "region", "cluster_type", "created_at"]
    list_filter = ["region", "cluster_type", "organization"]
    search_fields = ["name", "id", "organization__name"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Append-only: no add, change or delete here, and the model refuses them too."""

    list_display = ["created_at", "organization", "actor_label", "action", "target_label"]
    list_filter = ["action", "organization"]
    search_fields = ["action", "actor_label", "target_label", "target_id"]
    date_hierarchy = "created_at"


# --- tokens: hint, name and dates; never the digest ---------------------------------------------------------


class TokenAdmin(ReadOnlyAdmin):
    actions = ["force_revoke"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "hint"]

    @admin.action(description="Force-revoke selected tokens (written to the tenant's audit log)",
                  permissions=["operate"])
    def force_revoke(self, request, queryset):
        done = sum(tokens.token_force_revoke(token=token, operator=request.user) for token in queryset)
        report(self, request, done, "revoked", "token")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("digest")  # the token's digest never leaves the database


@admin.register(PersonalAccessToken)
class PersonalAccessTokenAdmin(TokenAdmin):
    list_display = ["name", "hint", "user", "organization", "created_at", "expires_at", "last_used_at",
                    "revoked_at"]
    list_select_related = ["user", "organization"]
    fields = ["name", "hint", "user", "organization", "created_at", "expires_at", "last_used_at", "revoked_at"]
    readonly_fields = fields


def owned_token_admin(owner: str):
    """The admin of tokens issued for an `owner` (a control plane, a system account) of one organization."""
    columns = ["name", "hint", owner, "organization", "created_by", "created_at", "expires_at", "last_used_at",
               "revoked_at"]

    class OwnedTokenAdmin(TokenAdmin):
        list_display = fields = readonly_fields = columns
        list_select_related = [f"{owner}__organization", "created_by"]

        @admin.display(description="organization")
        def organization(self, obj):
            return getattr(obj, owner).organization

    return OwnedTokenAdmin


@admin.register(DataPlaneToken)
class DataPlaneTokenAdmin(owned_token_admin("control_plane")):
    pass


@admin.register(SystemAccountAccessToken)
class SystemAccountAccessTokenAdmin(owned_token_admin("system_account")):
    pass
