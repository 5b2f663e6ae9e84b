"""The platform operator's view of the vault: metadata only. Secret values are excluded everywhere (never even
"[encrypted]"), and nothing can be added, changed or deleted here — that goes through the API or the pages, which
audit it in the tenant's log and crypto-shred a deleted store's data key."""

from django.contrib import admin
from django.db.models import Count

from encryption_keys.models import DataKey
from konnect_admin.admin import ReadOnlyAdmin
from vault.models import ConfigStore, Secret, SecretResolution, Vault, VaultProtection


@admin.register(ConfigStore)
class ConfigStoreAdmin(ReadOnlyAdmin):
    list_display = ["name", "id", "control_plane", "secret_count", "created_at", "updated_at"]
    list_select_related = ["control_plane"]
    search_fields = ["name", "id", "control_plane__name"]
    readonly_fields = ["id", "control_plane", "name", "created_at", "updated_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(secret_count=Count("secrets"))

    @admin.display(ordering="secret_count")
    def secret_count(self, obj):
        return obj.secret_count


@admin.register(Secret)
class SecretAdmin(ReadOnlyAdmin):
    list_display = ["key", "store", "control_plane_name", "updated_at"]
    list_select_related = ["store__control_plane"]
    search_fields = ["key", "store__name"]
    exclude = ["value"]
    fields = ["id", "store", "key", "data_key", "protecting_key_arn", "created_at", "updated_at"]
    readonly_fields = fields

    @admin.display(description="control plane")
    def control_plane_name(self, obj):
        return obj.store.control_plane.name

    @admin.display(description="data key")
    def data_key(self, obj):
        return obj.data_key_id or "—"

    @admin.display(description="protecting KMS key")
    def protecting_key_arn(self, obj):
        row = DataKey.objects.filter(pk=obj.data_key_id).first() if obj.data_key_id else None
        return row.wrapping_key_ref if row is not None else "—"


@admin.register(Vault)
class VaultAdmin(ReadOnlyAdmin):
    list_display = ["prefix", "name", "control_plane", "config_store", "updated_at"]
    list_select_related = ["control_plane", "config_store"]
    search_fields = ["prefix", "control_plane__name"]
    readonly_fields = ["id", "control_plane", "name", "prefix", "description", "config_store", "created_at",
                       "updated_at"]


@admin.register(VaultProtection)
class VaultProtectionAdmin(ReadOnlyAdmin):
    list_display = ["control_plane", "under_cmek", "decided_at", "migrated_at", "migrated_by"]
    list_filter = ["under_cmek"]
    readonly_fields = ["control_plane", "under_cmek", "decided_at", "migrated_at", "migrated_by"]


@admin.register(SecretResolution)
class SecretResolutionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "control_plane", "token", "reference", "outcome"]
    list_filter = ["outcome"]
    list_select_related = ["control_plane", "token"]
    readonly_fields = ["control_plane", "token", "reference", "outcome", "created_at"]
