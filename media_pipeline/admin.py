"""Operators' admin for uploads: per-educator quotas and the state of resumable uploads (superusers)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat

from media_pipeline import uploads
from media_pipeline.models import ResumableUpload, UploadQuota


@admin.register(UploadQuota)
class UploadQuotaAdmin(admin.ModelAdmin):
    """Overrides settings.UPLOAD_QUOTA_BYTES for one educator."""

    list_display = ("user", "quota", "used")
    search_fields = ("user__username", "user__email")
    autocomplete_fields = ("user",)

    @admin.display(description="Quota")
    def quota(self, obj: UploadQuota) -> str:
        return filesizeformat(obj.quota_bytes)

    @admin.display(description="In use")
    def used(self, obj: UploadQuota) -> str:
        return filesizeformat(uploads.quota_used(user=obj.user))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


@admin.register(ResumableUpload)
class ResumableUploadAdmin(admin.ModelAdmin):
    """Read-only: uploads change only through the upload APIs (tus, direct) and `manage.py uploads_sweep`."""

    list_display = ("public_id", "owner", "filename", "transport", "status", "offset", "length", "expires_at")
    list_filter = ("status", "transport")
    search_fields = ("owner__username", "filename")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
