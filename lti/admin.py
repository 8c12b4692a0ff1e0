"""LTI in the admin: registrations are for superusers only (a platform registration is a trust
decision); course shares (the picker's shared library) also for educators, scoped to their courses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.forms import ModelChoiceField
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from core.auth import request_user
from core.tasks import send_on_commit
from lti import gradebook, platforms, registration, sharing
from lti.errors import LtiError
from lti.models import (
    LtiContext,
    LtiCourseShare,
    LtiDeployment,
    LtiEducatorGrant,
    LtiPlatform,
    LtiRegistrationLink,
    LtiResourceLink,
    LtiScore,
    LtiToolKey,
)
from lti.selectors import platform_foreign_endpoints_of


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
    list_display = ("__str__", "issuer", "client_id", "active", "endpoints_elsewhere", "approved_at", "created_at")
    list_filter = ("active",)
    search_fields = ("name", "issuer", "client_id")
    inlines = [DeploymentInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = ("endpoints_outside_the_issuer", "approved_at", "approved_by")
    fieldsets = [
        (None, {"fields": ("name", "issuer", "client_id", "active", "approved_at", "approved_by")}),
        (
            "Endpoints",
            {
                "fields": (
                    "endpoints_outside_the_issuer",
                    "auth_login_url",
                    "auth_token_url",
                    "auth_token_audience",
                    "jwks_url",
                )
            },
        ),
        ("Framing", {"fields": ("frame_origins",)}),
        ("Instructors and accounts", {"fields": ("teaching_assistants_instruct", "link_accounts_by_email")}),
        (
            "Uploads from the lesson picker",
            {
                "fields": ("lms_upload_enabled", "lms_upload_quota_bytes"),
                "description": "Instructors of this platform upload new videos into their LMS course's lesson "
                "list from the Deep Linking picker. Each instructor may keep at most the quota in originals "
                "uploaded this way (their site-wide quota does not apply there).",
            },
        ),
    ]
    actions = ["approve"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        # Linking by email hands site accounts to whoever can set an email on the LMS: a superuser's call
        # only, even if this admin is ever opened to other staff (SuperuserOnly shuts them out today).
        return fields if request.user.is_superuser else (*fields, "link_accounts_by_email")

    @admin.display(description="Endpoints elsewhere")
    def endpoints_elsewhere(self, platform: LtiPlatform) -> int:
        return len(platform_foreign_endpoints_of(platform))

    @admin.display(description="Outside the issuer's origin")
    def endpoints_outside_the_issuer(self, platform: LtiPlatform) -> str:
        foreign = platform_foreign_endpoints_of(platform)
        if not foreign:
            return "none: every endpoint is on the issuer's origin"
        rows = format_html_join("", "<li>{}: <code>{}</code></li>", foreign)
        return format_html(
            "<strong>Check these before approving</strong>: the tool sends browsers and signed client "
            "assertions there.<ul>{}</ul>",
            rows,
        )

    @admin.action(description="Approve: let these platforms launch (check their endpoints first)")
    def approve(self, request: HttpRequest, queryset: QuerySet[LtiPlatform]) -> None:
        for platform in queryset:
            platforms.platform_approve(platform=platform, by=request_user(request))
        messages.info(request, f"{queryset.count()} platform(s) approved and active.")

    def save_model(self, request: HttpRequest, obj: LtiPlatform, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if obj.active and "active" in form.changed_data:  # ticking "active" is an approval too
            platforms.platform_approve(platform=obj, by=request_user(request))


class RegistrationLinkForm(forms.ModelForm):
    hours = forms.IntegerField(
        min_value=1, initial=settings.LTI_REGISTRATION_LINK_HOURS, help_text="How long the link can be used."
    )

    class Meta:
        model = LtiRegistrationLink
        fields = ("label",)


@admin.register(LtiRegistrationLink)
class LtiRegistrationLinkAdmin(SuperuserOnly):
    """Add one to get a one-time Dynamic Registration URL for an LMS administrator (shown once)."""

    list_display = ("__str__", "created_by", "created_at", "expires_at", "used_at", "platform")
    list_select_related = ("created_by", "platform")
    readonly_fields = ("created_by", "created_at", "expires_at", "used_at", "platform")
    actions = ["revoke"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = RegistrationLinkForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("label", "hours") if obj is None else ("label", *self.readonly_fields)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: LtiRegistrationLink, form: Any, change: bool) -> None:
        made = registration.registration_link_create(
            created_by=request_user(request),
            label=form.cleaned_data["label"],
            lifetime=timedelta(hours=form.cleaned_data["hours"]),
        )
        obj.pk, obj.token_hash, obj.expires_at = made.link.pk, made.link.token_hash, made.link.expires_at
        obj._state.adding = False
        messages.warning(
            request,
            format_html(
                "Give this one-time registration link to the LMS administrator (it is shown only now): "
                "<code id='lti-registration-url'>{}</code>",
                made.url,
            ),
        )

    @admin.action(description="Revoke: these links can no longer be used")
    def revoke(self, request: HttpRequest, queryset: QuerySet[LtiRegistrationLink]) -> None:
        for link in queryset.filter(used_at__isnull=True, expires_at__gt=timezone.now()):
            registration.registration_link_revoke(link=link)
        messages.info(request, "Revoked.")


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
            send_on_commit("nrps_sync_context", context_id)
        messages.info(request, f"Roster sync queued for {len(ids)} course(s).")


@admin.register(LtiResourceLink)
class LtiResourceLinkAdmin(SuperuserOnly):
    list_display = ("__str__", "resource_link_id", "lesson", "context", "lineitem_url", "grades_blocked_reason")
    search_fields = ("title", "resource_link_id")
    list_select_related = ("lesson", "context")
    readonly_fields = (
        "deployment", "resource_link_id", "context", "lineitem_url", "lineitems_url", "ags_scopes",
        "grades_blocked_reason", "score_maximum_read_from", "created_at",
    )  # fmt: skip


@admin.register(LtiEducatorGrant)
class LtiEducatorGrantAdmin(SuperuserOnly):
    """Which educator memberships came from LTI (lti/educators.py): only these end when the LMS demotes someone.
    Deleting a row here makes that membership the site's: the LMS no longer takes it away."""

    list_display = ("user", "context", "created_at")
    search_fields = ("user__username", "context__title", "context__context_id")
    list_select_related = ("user", "context")
    readonly_fields = ("user", "context", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # launches and the roster make them

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LtiScore)
class LtiScoreAdmin(SuperuserOnly):
    list_display = (
        "resource_link", "lti_user", "score_given", "score_maximum", "activity_progress", "version", "posted_version",
        "refused_version", "last_error",
    )  # fmt: skip
    list_filter = (("last_error", admin.EmptyFieldListFilter),)
    readonly_fields = [f.name for f in LtiScore._meta.fields]
    actions = ["resend"]

    @admin.action(description="Send the selected scores again (refused or failed ones)")
    def resend(self, request: HttpRequest, queryset: QuerySet[LtiScore]) -> None:
        sent = sum(gradebook.score_resend(score_id=pk) for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, f"{sent} score(s) queued to be sent again; the others had reached the gradebook.")

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


@admin.register(LtiCourseShare)
class LtiCourseShareAdmin(admin.ModelAdmin):
    """Share a course with an LMS: every instructor of that LMS may then pick its published lessons.

    Superusers share any course with any active LMS; educators (active staff) only the courses they
    teach, as in the course admin (courses.admin.EducatorScopedAdmin), and they see only those shares.
    Adding and deleting go through lti.sharing, which checks the same rule again."""

    list_display = ("course", "platform", "shared_by", "created_at")
    list_select_related = ("course", "platform", "shared_by")
    list_filter = ("platform",)
    search_fields = ("course__title", "course__slug")
    fields = ("course", "platform")

    def _is_educator(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._is_educator(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not self._is_educator(request):
            return False
        return obj is None or sharing.user_may_share(user=request_user(request), course=obj.course)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._is_educator(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a share has nothing to edit: delete it (unshare) or add another

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_view_permission(request, obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[LtiCourseShare]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(course__in=sharing.courses_shareable_by(user=request_user(request)))

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        if db_field.name == "course":
            kwargs["queryset"] = sharing.courses_shareable_by(user=request_user(request)).order_by("title")
        elif db_field.name == "platform":
            kwargs["queryset"] = LtiPlatform.objects.filter(active=True).order_by("name", "issuer")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: LtiCourseShare, form: Any, change: bool) -> None:
        try:
            share, _ = sharing.course_share(course=obj.course, platform=obj.platform, by=request_user(request))
        except LtiError as exc:  # the form's choices already exclude it; checked again in the service
            raise PermissionDenied(exc.reason) from exc
        obj.pk, obj.created_at, obj.shared_by = share.pk, share.created_at, share.shared_by
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: LtiCourseShare) -> None:
        sharing.course_unshare(course=obj.course, platform=obj.platform, by=request_user(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[LtiCourseShare]) -> None:
        for share in queryset.select_related("course", "platform"):
            sharing.course_unshare(course=share.course, platform=share.platform, by=request_user(request))
