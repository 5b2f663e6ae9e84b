"""The platform operator's view of keys, data keys and the KMS call log: metadata only, never key material.

Rows change only through the app's services (verification, audit): the operator reads here.
"""

from django.contrib import admin

from encryption_keys.models import DataKey, EncryptionKey, KeyStatusChange, KmsCall, PlatformKeyHealth
from konnect_admin.admin import ReadOnlyAdmin, ReadOnlyInline


class KeyStatusChangeInline(ReadOnlyInline):
    model = KeyStatusChange
    fields = ["created_at", "previous_status", "status", "detail"]
    readonly_fields = fields


@admin.register(EncryptionKey)
class EncryptionKeyAdmin(ReadOnlyAdmin):
    list_display = ["organization", "region", "name", "status", "last_checked_at", "deletion_date"]
    list_filter = ["status", "region"]
    search_fields = ["name", "key_ref", "organization__name"]
    list_select_related = ["organization"]
    inlines = [KeyStatusChangeInline]
    fields = ["organization", "region", "name", "description", "key_ref", "status", "deletion_date",
              "last_checked_at", "last_error", "kms_metadata", "linked_by", "linked_at", "created_at", "updated_at"]
    readonly_fields = fields


@admin.register(DataKey)
class DataKeyAdmin(ReadOnlyAdmin):
    list_display = ["id", "organization", "region", "purpose", "scope_ref", "wrapping_key_ref", "created_at",
                    "encrypt_until", "usage_count", "shredded_at"]
    list_filter = ["purpose", "region", ("shredded_at", admin.EmptyFieldListFilter)]
    search_fields = ["=id", "scope_ref", "wrapping_key_ref", "organization__name"]
    list_select_related = ["organization"]
    exclude = ["wrapped"]  # wrapped key material never appears, not even on the change form
    readonly_fields = ["id", "organization", "region", "purpose", "scope_ref", "wrapping_key_ref", "created_at",
                       "encrypt_until", "usage_count", "retired_at", "shredded_at", "rewrapped_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("wrapped")


@admin.register(KmsCall)
class KmsCallAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "organization", "operation", "outcome", "key_ref", "location", "latency_ms"]
    list_filter = ["operation", "outcome", "location"]
    search_fields = ["key_ref", "request_id", "organization__name"]
    list_select_related = ["organization"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at", "organization", "key_ref", "location", "operation", "encryption_context",
                       "outcome", "latency_ms", "request_id"]


@admin.register(PlatformKeyHealth)
class PlatformKeyHealthAdmin(ReadOnlyAdmin):
    """What the scheduled sweep last read of each platform key (one DescribeKey per key per sweep)."""

    list_display = ["region", "status", "last_checked_at", "changed_at", "deletion_date", "key_ref"]
    list_filter = ["status"]
    fields = ["region", "key_ref", "status", "deletion_date", "last_error", "last_checked_at", "changed_at"]
    readonly_fields = fields
