"""LTI registrations in the admin: superusers only (a platform registration is a trust decision)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from courses.lti import platforms
from courses.lti.actors import nrps_sync_context
from courses.lti.models import LtiContext, LtiDeployment, LtiPlatform, LtiResourceLink, LtiScore, LtiToolKey


class SuperuserOnly(admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)


class DeploymentInline(admin.TabularInline):
    model = LtiDeployment
    extra = 1
    fields = ("deployment_id", "created_at")
    readonly_fields = ("created_at",)


@admin.register(LtiPlatform)
class LtiPlatformAdmin(SuperuserOnly):
    list_display = ("__str__", "issuer", "client_id", "active", "created_at")
    list_filter = ("active",)
    search_fields = ("name", "issuer", "client_id")
    inlines = [DeploymentInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = [
        (None, {"fields": ("name", "issuer", "client_id", "active")}),
        ("Endpoints", {"fields": ("auth_login_url", "auth_token_url", "auth_token_audience", "jwks_url")}),
        ("Framing", {"fields": ("frame_origins",)}),
    ]


@admin.register(LtiContext)
class LtiContextAdmin(SuperuserOnly):
    list_display = ("__str__", "context_id", "deployment", "course", "roster_synced_at")
    search_fields = ("title", "label", "context_id")
    list_select_related = ("deployment__platform", "course")
    readonly_fields = ("deployment", "context_id", "memberships_url", "roster_synced_at", "created_at")
    fields = ("deployment", "context_id", "title", "label", "course", "memberships_url", "roster_synced_at")
    actions = ["sync_roster"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # contexts come from launches

    @admin.action(description="Sync the roster from the LMS (Names and Role Provisioning)")
    def sync_roster(self, request: HttpRequest, queryset: QuerySet[LtiContext]) -> None:
        ids = list(queryset.exclude(memberships_url="").filter(course__isnull=False).values_list("pk", flat=True))
        for context_id in ids:
            transaction.on_commit(lambda context_id=context_id: nrps_sync_context.send(context_id))
        messages.info(request, f"Roster sync queued for {len(ids)} course(s).")


@admin.register(LtiResourceLink)
class LtiResourceLinkAdmin(SuperuserOnly):
    list_display = ("__str__", "resource_link_id", "lesson", "context", "lineitem_url", "grades_blocked_reason")
    search_fields = ("title", "resource_link_id")
    list_select_related = ("lesson", "context")
    readonly_fields = (
        "deployment", "resource_link_id", "context", "lineitem_url", "lineitems_url", "ags_scopes",
        "grades_blocked_reason", "created_at",
    )  # fmt: skip


@admin.register(LtiScore)
class LtiScoreAdmin(SuperuserOnly):
    list_display = ("resource_link", "lti_user", "score_given", "activity_progress", "version", "posted_version")
    readonly_fields = [f.name for f in LtiScore._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(LtiToolKey)
class LtiToolKeyAdmin(SuperuserOnly):
    list_display = ("kid", "active", "created_at", "retired_at")
    fields = ("kid", "active", "public_jwk", "created_at", "retired_at")
    readonly_fields = fields
    actions = ["rotate"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Rotate: make a new signing key (the old one stays published for a while)")
    def rotate(self, request: HttpRequest, queryset: QuerySet[LtiToolKey]) -> None:
        key = platforms.tool_key_rotate()
        messages.info(request, f"New signing key {key.kid}.")
