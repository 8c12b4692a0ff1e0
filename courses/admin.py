"""Educator admin: courses and lessons, video upload, processing state and preview.

An educator is a staff user who teaches a course; they see and edit only the courses
they teach (and their lessons). Superusers see everything.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import ForeignKey, QuerySet
from django.forms import ModelChoiceField
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from core.auth import request_user
from courses import selectors, services
from courses.models import Course, Enrollment, Lesson, LessonCaption, TextTrackKind
from media_pipeline import text_tracks, uploads


def _is_educator(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_staff)


class EducatorScopedAdmin(admin.ModelAdmin):
    """Staff users manage only what belongs to the courses they teach."""

    course_field = "course"

    def scoped_courses(self, request: HttpRequest) -> QuerySet[Course]:
        return selectors.courses_taught_by(user=request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _is_educator(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_educator(request) and (obj is None or self._owns(request, obj))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_view_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _is_educator(request)

    def _owns(self, request: HttpRequest, obj: Any) -> bool:
        if request.user.is_superuser:
            return True
        course = obj if isinstance(obj, Course) else getattr(obj, self.course_field)
        return self.scoped_courses(request).filter(pk=course.pk).exists()

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        lookup = "pk__in" if self.model is Course else f"{self.course_field}__in"
        return queryset.filter(**{lookup: self.scoped_courses(request)})

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField | None:
        if db_field.name == self.course_field and not request.user.is_superuser:
            kwargs["queryset"] = self.scoped_courses(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class TaughtCourseFilter(admin.RelatedFieldListFilter):
    """The course filter offers only the courses the educator teaches (superusers: every course):
    Django's own filter lists every course's title to every staff user."""

    def field_choices(self, field: Any, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        if request.user.is_superuser:
            courses = Course.objects.all()
        elif isinstance(model_admin, EducatorScopedAdmin):
            courses = model_admin.scoped_courses(request)
        else:
            raise TypeError(f"TaughtCourseFilter is for the educator-scoped admins, not {type(model_admin).__name__}")
        ordering = self.field_admin_ordering(field, request, model_admin) or ("title",)
        return [(course.pk, str(course)) for course in courses.order_by(*ordering)]


class EducatorInline(admin.TabularInline):
    """An inline educators may edit: the parent admin (EducatorScopedAdmin) already limits which
    courses and lessons an educator can open."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_educator(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_educator(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_educator(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_educator(request)


class LessonInline(EducatorInline):
    model = Lesson
    fields = ("position", "title", "state", "media_status")
    readonly_fields = ("media_status",)
    extra = 0
    show_change_link = True
    ordering = ("position", "id")


@admin.register(Course)
class CourseAdmin(EducatorScopedAdmin):
    list_display = ("title", "slug", "published", "lesson_count")
    list_filter = ("published",)
    search_fields = ("title", "slug")
    prepopulated_fields = {"slug": ("title",)}
    filter_horizontal = ("educators",)
    inlines = [LessonInline]

    @admin.display(description="Lessons")
    def lesson_count(self, obj: Course) -> int:
        return obj.lessons.count()

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Only superusers assign teachers; an educator is added automatically to what they create.
        return () if request.user.is_superuser else ("educators",)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if not change and not request.user.is_superuser:
            form.instance.educators.add(request.user)

    # Deleting goes through the service so the videos leave every storage region too.
    def delete_model(self, request: HttpRequest, obj: Course) -> None:
        services.course_delete(course=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Course]) -> None:
        for course in queryset:
            services.course_delete(course=course)


class LessonAdminForm(forms.ModelForm):
    video = forms.FileField(
        required=False,
        help_text="A video file (any common format). Uploading again replaces the video once the new one is ready.",
        widget=forms.ClearableFileInput(attrs={"accept": "video/*,audio/*"}),
    )

    class Meta:
        model = Lesson
        fields = ("course", "title", "description", "state", "position", "public", "completion_threshold", "protected")

    uploader: User | None = None  # the educator posting the form (set by LessonAdmin.get_form), for the quota

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Optional in the form: a post without it (older scripts, the upload tests) keeps the current value.
        self.fields["completion_threshold"].required = False

    def clean_completion_threshold(self) -> int:
        value = self.cleaned_data.get("completion_threshold")
        return self.instance.completion_threshold if value is None else value

    def clean_video(self) -> Any:
        video = self.cleaned_data.get("video")
        if video is None:
            return None
        try:
            # The same limits, in the same words, as the resumable upload widget's.
            uploads.check_size(video.size)
            if self.uploader is not None:
                uploads.check_quota(user=self.uploader, length=video.size)
        except uploads.UploadError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return video


class LessonCaptionForm(forms.ModelForm):
    """One caption language (SRT or WebVTT) or the chapters (WebVTT): converted and validated here, so
    a bad file stops the whole save with its reason and nothing changes."""

    file = forms.FileField(
        required=False,
        help_text="Captions: SRT or WebVTT, UTF-8. Chapters: WebVTT, one cue per chapter with its title.",
        widget=forms.ClearableFileInput(attrs={"accept": ".srt,.vtt,text/vtt"}),
    )

    class Meta:
        model = LessonCaption
        fields = ("kind", "language", "label")

    def clean_language(self) -> str:
        language = self.cleaned_data["language"].strip()
        if not text_tracks.language_valid(language):
            raise forms.ValidationError("Use a BCP 47 language code such as en, fr or pt-BR.")
        return language

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        upload = data.get("file")
        if upload is None:
            if self.instance.pk is None and "file" not in self.errors:
                self.add_error("file", "Choose a caption file.")
            return data
        lesson = self.instance.lesson if self.instance.lesson_id else None
        duration = lesson.duration_seconds if lesson is not None else None
        chapters = data.get("kind") == TextTrackKind.CHAPTERS
        convert = text_tracks.chapters_to_vtt if chapters else text_tracks.captions_to_vtt
        try:
            vtt = convert(upload.read(text_tracks.MAX_BYTES + 1), duration=duration)
        except text_tracks.TextTrackInvalid as exc:
            self.add_error("file", f"{upload.name}: {exc}.")
            return data
        self.instance.vtt = vtt
        self.instance.source_name = upload.name[:255]
        return data


class LessonCaptionFormSet(forms.BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        seen: set[tuple[str, str]] = set()
        chapters = 0
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or not form.cleaned_data or form.cleaned_data.get("DELETE"):
                continue
            kind, language = form.cleaned_data.get("kind"), form.cleaned_data.get("language", "").lower()
            if (kind, language) in seen:
                raise forms.ValidationError(f"Two {kind} files for the language {language}.")
            seen.add((kind, language))
            chapters += kind == TextTrackKind.CHAPTERS
        if chapters > 1:
            raise forms.ValidationError("A lesson has one chapters file.")


class LessonCaptionInline(EducatorInline):
    model = LessonCaption
    form = LessonCaptionForm
    formset = LessonCaptionFormSet
    fields = ("kind", "language", "label", "file", "source_name")
    readonly_fields = ("source_name",)
    extra = 0
    verbose_name = "caption or chapters file"
    verbose_name_plural = "Captions and chapters (a change publishes a new version of the video, without re-encoding)"


@admin.register(Lesson)
class LessonAdmin(EducatorScopedAdmin):
    form = LessonAdminForm
    list_display = ("title", "course", "position", "state", "public", "media_status")
    list_filter = ("state", "public", ("course", TaughtCourseFilter))
    search_fields = ("title", "course__title")
    readonly_fields = ("public_id", "processing_state", "failure_reason", "duration", "storage_regions")
    list_select_related = ("course", "asset")
    change_form_template = "admin/courses/lesson/change_form.html"
    inlines = [LessonCaptionInline]

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> list:
        # A post without the captions part (older scripts, the upload tests) leaves the captions as they are.
        if request.method == "POST" and "captions-TOTAL_FORMS" not in request.POST:
            return []
        return super().get_inline_instances(request, obj)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if any(formset.model is LessonCaption and formset.has_changed() for formset in formsets):
            if services.lesson_text_tracks_sync(lesson=form.instance):
                messages.info(request, "Captions changed: a new version of the video is being published.")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        if not issubclass(form, LessonAdminForm):
            raise TypeError(f"LessonAdmin's form must be a LessonAdminForm, not {form.__name__}")
        form.uploader = request_user(request)
        return form

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list:
        fieldsets: list = [
            (None, {"fields": ("course", "title", "description", "state", "position", "public")}),
            ("Video", {"fields": ("video", "protected")}),
            ("Completion (LMS gradebooks)", {"fields": ("completion_threshold",)}),
        ]
        if obj is not None:
            fieldsets[1][1]["fields"] = (
                "video", "protected", "processing_state", "failure_reason", "duration", "storage_regions", "public_id"
            )  # fmt: skip
        return fieldsets

    @admin.display(description="Processing")
    def processing_state(self, obj: Lesson) -> str:
        return selectors.lesson_processing_text(lesson=obj)

    @admin.display(description="Failure reason")
    def failure_reason(self, obj: Lesson) -> str:
        return obj.asset.failure_reason if obj.asset and obj.asset.failure_reason else "-"

    @admin.display(description="Storage regions")
    def storage_regions(self, obj: Lesson) -> str:
        rows = _region_rows(obj)
        if not rows:
            return "-"
        return format_html_join(
            mark_safe("<br>"),
            "{} in {}: {} ({}/{} objects){}",
            (
                (row["version"], row["region"], row["state_text"], row["objects_copied"], row["objects_total"],
                 f" - {row['last_error']}" if row["last_error"] else "")
                for row in rows
            ),
        )  # fmt: skip

    def delete_model(self, request: HttpRequest, obj: Lesson) -> None:
        services.lesson_delete(lesson=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Lesson]) -> None:
        for lesson in queryset:
            services.lesson_delete(lesson=lesson)

    @admin.display(description="Duration")
    def duration(self, obj: Lesson) -> str:
        seconds = obj.duration_seconds
        return "-" if seconds is None else f"{int(seconds // 60)}:{int(seconds % 60):02d}"

    def save_model(self, request: HttpRequest, obj: Lesson, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
        else:  # placed after the course's last lesson under the course's lock, as lesson_create does
            services.lesson_add(lesson=obj)
        video = form.cleaned_data.get("video")
        # A new upload takes the lesson's protection with it; otherwise a change rebuilds the video.
        if change and video is None and "protected" in form.changed_data:
            if services.lesson_set_protected(lesson=obj, protected=obj.protected):
                messages.info(request, "Protection changed: a new version of the video is being built.")
        if video is not None:
            services.lesson_attach_video(
                lesson=obj, stream=video, source_name=video.name, uploader=request_user(request)
            )
            messages.info(request, "Video received. Processing has started; this page shows its progress.")

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        # The upload widget of the change page (static/js/lesson-upload.js): where to upload over tus
        # and in what chunks, and where to ask whether it may upload straight to S3 instead.
        extra_context = {
            **(extra_context or {}),
            "upload_endpoint": reverse("api-upload-create"),
            "upload_chunk_bytes": settings.UPLOAD_WIDGET_CHUNK_BYTES,
            "direct_upload_endpoint": reverse("api-direct-uploads"),
            "direct_upload_url_seconds": settings.UPLOAD_DIRECT_URL_SECONDS,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self) -> list:
        custom = [
            path(
                "<int:object_id>/status/",
                self.admin_site.admin_view(self.status_view),
                name="courses_lesson_status",
            )
        ]
        return custom + super().get_urls()

    def status_view(self, request: HttpRequest, object_id: int) -> JsonResponse:
        lesson = get_object_or_404(self.get_queryset(request).select_related("asset"), pk=object_id)
        asset = lesson.asset if selectors.lesson_has_video(lesson=lesson) else None
        return JsonResponse(
            {
                "status": asset.status if asset else "none",
                "text": selectors.lesson_processing_text(lesson=lesson),
                "progress": asset.progress if asset else 0,
                "failure_reason": asset.failure_reason if asset else "",
                "playable": bool(asset and asset.is_playable),
                "provisional": bool(asset and asset.published_provisional),
                "regions": _region_rows(lesson),
            }
        )


def _region_rows(lesson: Lesson) -> list[dict[str, Any]]:
    return selectors.lesson_replicas(lesson=lesson)


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    """Superusers manage enrolments by hand; learners enrol themselves on the course page."""

    list_display = ("user", "course", "created_at")
    list_filter = ("course",)
    search_fields = ("user__username", "user__email", "course__title")
    autocomplete_fields = ("user",)


from courses import admin_tokens  # noqa: E402, F401  (replaces DRF's token admin)
