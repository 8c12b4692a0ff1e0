"""Courses, lessons and enrolment."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from media_pipeline.models import MediaAsset


class Course(models.Model):
    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    educators = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="taught_courses", blank=True)
    published = models.BooleanField(default=False, help_text="Visible in the catalogue.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class LessonState(models.TextChoices):
    DRAFT = "draft", "Draft (only educators see it)"
    PUBLISHED = "published", "Published (learners see it once its video is ready)"


class Lesson(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="lessons")
    position = models.PositiveIntegerField(default=0)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    state = models.CharField(max_length=16, choices=LessonState.choices, default=LessonState.PUBLISHED)
    public = models.BooleanField(
        default=False,
        help_text="Free preview: anyone may watch it, without logging in or enrolling, once the lesson and its "
        "course are published.",
    )
    asset = models.OneToOneField(MediaAsset, on_delete=models.SET_NULL, null=True, blank=True, related_name="lesson")
    completion_threshold = models.PositiveSmallIntegerField(
        default=90,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Percent of the lesson's seconds a learner must actually play for it to count as completed.",
    )
    protected = models.BooleanField(
        default=False,
        help_text="Encrypt the video (DRM): it plays only in this site's player, for viewers allowed to watch, "
        "with keys released per viewer. Changing it on a published video builds a new version.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["course", "position", "id"]
        # Positions are not unique: an educator swapping two lessons in the admin saves them one row
        # at a time, and ties are broken by id.
        indexes = [models.Index(fields=["course", "position"], name="lesson_course_position")]
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=LessonState.values), name="lesson_state_valid"),
            models.CheckConstraint(
                condition=models.Q(completion_threshold__gte=1, completion_threshold__lte=100),
                name="lesson_completion_threshold_percent",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def duration_seconds(self) -> float | None:
        return self.asset.duration_seconds if self.asset else None

    @property
    def media_status(self) -> str:
        return self.asset.status if self.asset else "no video"


class TextTrackKind(models.TextChoices):
    CAPTIONS = "subtitles", "Captions"
    CHAPTERS = "chapters", "Chapters"


class LessonCaption(models.Model):
    """Captions in one language, or the chapter list, of a lesson; stored as validated WebVTT
    (courses.services.lesson_text_tracks_sync hands them to the media pipeline)."""

    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="captions")
    kind = models.CharField(max_length=16, choices=TextTrackKind.choices, default=TextTrackKind.CAPTIONS)
    language = models.CharField(max_length=35, help_text="BCP 47 language code, e.g. en, fr, pt-BR.")
    label = models.CharField(max_length=80, help_text="Shown in the player's caption menu, e.g. English.")
    vtt = models.TextField(editable=False)
    source_name = models.CharField(max_length=255, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["lesson", "kind", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=TextTrackKind.values), name="caption_kind_valid"),
            models.UniqueConstraint(fields=["lesson", "kind", "language"], name="caption_one_per_language"),
            models.UniqueConstraint(
                fields=["lesson"], condition=models.Q(kind="chapters"), name="caption_one_chapters_per_lesson"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.language} of {self.lesson}"


class Enrollment(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrollments")
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="enrollments")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "course"], name="enrollment_unique_user_course"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.course}"


class LessonProgress(models.Model):
    """Which seconds of a lesson a user has actually played: one bit per second (see courses/progress.py)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lesson_progress")
    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="progress")
    watched = models.BinaryField(default=b"")
    seconds_watched = models.PositiveIntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)
    # The credit clock (courses/progress.py credit()): the wall-clock time the credited seconds have
    # used up at the fastest playback rate, over all of the user's viewings of the lesson.
    credit_clock = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "lesson"], name="lesson_progress_unique_user_lesson"),
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.lesson}: {self.seconds_watched} s"
