"""Key releases, read-only, for superusers (who received which key, when, from where)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from playback.models import KeyRelease


@admin.register(KeyRelease)
class KeyReleaseAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "lesson_public_id", "version", "kid", "endpoint", "outcome", "ip")
    list_filter = ("outcome", "endpoint")
    search_fields = ("user__username", "lesson_public_id", "kid", "ip")
    date_hierarchy = "created_at"
    list_select_related = ("user",)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
