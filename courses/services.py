"""Writes and workflows for courses, lessons and enrolment."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from core import errors
from courses import hooks, progress, selectors
from courses.models import Course, Enrollment, Lesson, LessonCaption, LessonProgress, LessonState, TextTrackKind
from courses.view_tokens import ViewClaim, view_token_read
from media_pipeline import direct_uploads, text_tracks, tus, uploads
from media_pipeline import services as media_services
from media_pipeline.models import MediaAsset, ResumableUpload


def enrollment_create(*, user: User, course: Course) -> Enrollment:
    """Enrol a user in a course; enrolling twice returns the existing enrolment."""
    enrollment, _ = Enrollment.objects.get_or_create(user=user, course=course)
    return enrollment


def course_create(
    *,
    slug: str,
    title: str,
    description: str = "",
    educators: Iterable[User] = (),
    published: bool = False,
) -> Course:
    course = Course.objects.create(slug=slug, title=title, description=description, published=published)
    course.educators.set(list(educators))
    return course


def lesson_create(
    *,
    course: Course,
    title: str,
    description: str = "",
    state: str = LessonState.PUBLISHED,
    protected: bool = False,
) -> Lesson:
    """Append a lesson at the end of its course."""
    lesson = Lesson(course=course, title=title, description=description, state=state, protected=protected)
    return lesson_add(lesson=lesson)


@transaction.atomic
def lesson_add(*, lesson: Lesson) -> Lesson:
    """Save a new lesson (made by lesson_create, or by the admin's form); one without a position (0)
    goes after the last lesson of its course."""
    # Lock the course row so two lessons added at once do not take the same position.
    Course.objects.select_for_update().filter(pk=lesson.course_id).first()
    if lesson.position == 0:
        last = Lesson.objects.filter(course_id=lesson.course_id).aggregate(last=Max("position"))["last"]
        lesson.position = 0 if last is None else last + 1
    lesson.save()
    return lesson


@transaction.atomic
def lesson_attach_video(*, lesson: Lesson, stream: IO[bytes], source_name: str, uploader: User | None = None) -> Lesson:
    """Store an uploaded video for a lesson and start processing it.

    A lesson keeps one media asset for life; a new upload builds a new version of it while
    the version already published keeps playing until the new one is ready. With ``uploader``
    (an educator's form upload) the file counts towards that educator's quota.
    """
    lesson, asset = _lesson_with_asset(lesson)
    asset = media_services.asset_upload_source(
        asset=asset, stream=stream, source_name=source_name, protected=lesson.protected
    )
    if uploader is not None:
        uploads.upload_record_direct(owner=uploader, asset=asset, filename=tus.display_name(source_name))
    return lesson


def _lesson_with_asset(lesson: Lesson) -> tuple[Lesson, MediaAsset]:
    """The lesson, locked, and its media asset (made on first use). Inside a transaction."""
    lesson = Lesson.objects.select_for_update().get(pk=lesson.pk)
    asset = lesson.asset
    if asset is None:
        # The asset starts with the lesson's protection, so every upload path (form, tus) encrypts it.
        asset = media_services.asset_create(
            key_prefix=f"lessons/{lesson.public_id}",
            protected=lesson.protected,
            text_tracks=selectors.lesson_text_tracks(lesson=lesson),
        )
        lesson.asset = asset
        lesson.save(update_fields=["asset"])
    return lesson, asset


def lesson_upload_start(
    *,
    user: User,
    lesson: Lesson,
    length: int,
    filename: str,
    direct: bool = False,
    quota: uploads.QuotaScope | None = None,
) -> ResumableUpload:
    """Start a resumable upload of a new video for the lesson: over tus, or ``direct`` to S3 through
    presigned part URLs (media_pipeline.direct_uploads). The caller has checked that the user may
    upload to it (selectors.user_may_upload). The upload counts against ``quota`` when given (an upload
    grant's, courses/upload_grants.py), else the user's site-wide quota. Raises uploads.UploadError
    subclasses (413 for size and quota, before any storage call) with a reason to show. Completing the
    upload starts processing, once."""
    if direct and not direct_uploads.direct_available():  # before the lesson gets an asset
        raise direct_uploads.DirectUnavailable("direct uploads need S3 storage; upload over tus (/api/v1/uploads/)")
    with transaction.atomic():
        lesson, asset = _lesson_with_asset(lesson)
    name = tus.display_name(filename)
    if direct:
        return direct_uploads.direct_upload_create(owner=user, asset=asset, length=length, filename=name, quota=quota)
    return uploads.upload_create(owner=user, asset=asset, length=length, filename=name, quota=quota)


@transaction.atomic
def lesson_set_protected(*, lesson: Lesson, protected: bool) -> bool:
    """Mark a lesson's video protected (encrypted) or not; True when a new version is built for it."""
    Lesson.objects.filter(pk=lesson.pk).update(protected=protected)
    lesson.protected = protected
    if lesson.asset is None:
        return False
    return media_services.asset_set_protected(asset=lesson.asset, protected=protected)


@transaction.atomic
def lesson_text_tracks_sync(*, lesson: Lesson) -> bool:
    """Hand the lesson's captions and chapters (as saved) to its video; True when a new version is
    being built for them. Called after the educator saved them; the captions were validated then."""
    lesson = Lesson.objects.select_for_update().get(pk=lesson.pk)
    if lesson.asset is None:
        return False  # the video, when it comes, starts with them (_lesson_with_asset)
    return media_services.asset_set_text_tracks(asset=lesson.asset, tracks=selectors.lesson_text_tracks(lesson=lesson))


class LessonEditInvalid(errors.Invalid):
    """A lesson edit that cannot be saved (empty title, bad caption file); nothing was changed."""


@transaction.atomic
def lesson_details_update(*, lesson: Lesson, title: str, description: str) -> Lesson:
    """Change a lesson's title and description (the educator who may was checked by the caller)."""
    title = title.strip()
    if not title:
        raise LessonEditInvalid("a lesson needs a title")
    # get_field() is typed as any field or relation, whose max_length may be None; title's is 200.
    if len(title) > Lesson._meta.get_field("title").max_length:  # type: ignore[operator]
        raise LessonEditInvalid("the title is too long (200 characters at most)")
    Lesson.objects.filter(pk=lesson.pk).update(title=title, description=description.strip())
    lesson.title, lesson.description = title, description.strip()
    return lesson


@transaction.atomic
def lesson_move(*, lesson: Lesson, offset: int) -> bool:
    """Move a lesson `offset` places (-1: up, 1: down) in its course; False at either end.

    The course's lessons are renumbered 0..n-1 in their shown order (position, then id), so ties that
    the admin allows do not make a move a no-op. The course row is locked: two moves take turns."""
    Course.objects.select_for_update().filter(pk=lesson.course_id).first()
    ordered = list(Lesson.objects.filter(course_id=lesson.course_id).order_by("position", "id").only("id", "position"))
    index = next((i for i, row in enumerate(ordered) if row.pk == lesson.pk), None)
    if index is None or not 0 <= index + offset < len(ordered):
        return False
    ordered[index], ordered[index + offset] = ordered[index + offset], ordered[index]
    changed = []
    for position, row in enumerate(ordered):
        if row.position != position:
            row.position = position
            changed.append(row)
    Lesson.objects.bulk_update(changed, ["position"])
    return True


@transaction.atomic
def lesson_caption_save(*, lesson: Lesson, language: str, label: str, data: bytes, source_name: str) -> LessonCaption:
    """Add or replace the captions of one language (SRT or WebVTT, validated and converted to WebVTT as
    the admin does), then hand the lesson's captions to its video. A bad file changes nothing."""
    language = language.strip()
    if not text_tracks.language_valid(language):
        raise LessonEditInvalid("use a BCP 47 language code such as en, fr or pt-BR")
    label = label.strip()[:80] or language
    try:
        vtt = text_tracks.captions_to_vtt(data, duration=lesson.duration_seconds)
    except text_tracks.TextTrackInvalid as exc:
        raise LessonEditInvalid(f"{source_name[:100]}: {exc}") from exc
    caption, _ = LessonCaption.objects.update_or_create(
        lesson=lesson,
        kind=TextTrackKind.CAPTIONS,
        language__iexact=language,
        defaults={"language": language, "label": label, "vtt": vtt, "source_name": source_name[:255]},
    )
    lesson_text_tracks_sync(lesson=lesson)
    return caption


class ProgressUnavailable(errors.Conflict):
    """The lesson has no known duration yet, so progress cannot be measured."""


class ProgressRefused(errors.NotAllowed):
    """The report carries no view token this server issued, for this viewer and lesson, still valid."""


def _view_claim(*, view_token: object, user: User, lesson: Lesson, now: datetime) -> ViewClaim:
    # One HMAC, no query: the token names the lesson and the user it was issued for.
    claim = view_token_read(
        secret=settings.VIEW_TOKEN_SECRET.encode(),
        token=view_token,
        now=int(now.timestamp()),
        max_age=settings.VIEW_TOKEN_MAX_AGE_SECONDS,
    )
    if claim is None:
        raise ProgressRefused("the view token is not valid or has expired: start a new playback session")
    if claim.lesson != str(lesson.public_id) or claim.user_id != user.pk:
        raise ProgressRefused("the view token was issued for another lesson or viewer")
    return claim


def lesson_progress_record(
    *, user: User, lesson: Lesson, ranges: object, view_token: object, now: datetime | None = None
) -> LessonProgress:
    """Credit the time ranges a player reports to the user's watched seconds of the lesson.

    The report must carry the view token of a playback session the user started for this lesson
    (else ProgressRefused, and nothing changes). Newly claimed seconds are credited no faster than
    wall-clock time at the fastest playback rate, over all the user's viewings (progress.credit());
    the rest can be claimed again by a later report. Raises progress.RangesInvalid for malformed ranges.
    Completion (the lesson's threshold of credited seconds reached) is recorded once. After the
    transaction commits, the listeners of hooks.progress_recorded_listen (LMS gradebooks) are told.
    """
    now = now or timezone.now()
    claim = _view_claim(view_token=view_token, user=user, lesson=lesson, now=now)
    duration = lesson.duration_seconds
    if not duration:
        raise ProgressUnavailable("the lesson has no duration yet")
    total = progress.total_seconds(duration)
    played = progress.seconds_played(progress.parse_ranges(ranges, duration=duration), total=total)
    # A refused report never got this far: it cost no query, not even a transaction.
    with transaction.atomic():
        return _progress_credit(user=user, lesson=lesson, claim=claim, played=played, total=total, now=now)


def _progress_credit(
    *, user: User, lesson: Lesson, claim: ViewClaim, played: set[int], total: int, now: datetime
) -> LessonProgress:
    LessonProgress.objects.get_or_create(user=user, lesson=lesson)
    # The row lock makes concurrent reports (ten tabs) take turns with one credit clock.
    record = LessonProgress.objects.select_for_update().get(user=user, lesson=lesson)
    credit = progress.credit(
        claimed=played,
        bitmap=bytes(record.watched),
        total=total,
        clock=record.credit_clock.timestamp() if record.credit_clock else None,
        issued_at=claim.issued_at,
        now=now.timestamp(),
    )
    record.credit_clock = datetime.fromtimestamp(credit.clock, tz=UTC)
    record.watched = progress.bitmap_merge(bytes(record.watched), credit.seconds, total=total)
    record.seconds_watched = progress.bitmap_count(record.watched, total=total)
    share = record.seconds_watched / total
    if record.completed_at is None and share * 100 >= lesson.completion_threshold:
        record.completed_at = now
    record.save()
    completed = record.completed_at is not None
    transaction.on_commit(
        lambda: hooks.progress_recorded_notify(user=user, lesson=lesson, share=share, completed=completed)
    )
    return record


def lesson_delete(*, lesson: Lesson) -> None:
    """Delete a lesson and its video everywhere: every version in every storage region, and the
    original. Regions that are down are cleaned when they return (media_pipeline.replication)."""
    with transaction.atomic():
        asset_id = lesson.asset_id
        lesson.delete()
        if asset_id is not None:
            media_services.asset_delete(asset_id=asset_id)


def course_delete(*, course: Course) -> None:
    with transaction.atomic():
        for lesson in course.lessons.all():
            lesson_delete(lesson=lesson)
        course.delete()


@transaction.atomic
def user_records_move(*, source: User, target: User) -> None:
    """Give ``target`` what ``source`` has in courses: the courses it teaches, its enrolments and its
    watched seconds (lti calls this when an LMS identity's placeholder account is linked to an
    existing account). Where both have progress in a lesson, the watched seconds are merged (a second
    either watched counts), the earlier completion is kept, and the later credit clock (so merging
    earns no credit that neither had)."""
    for course in Course.objects.filter(educators=source):
        course.educators.add(target)
        course.educators.remove(source)
    for enrollment in Enrollment.objects.filter(user=source):
        Enrollment.objects.get_or_create(user=target, course_id=enrollment.course_id)
    Enrollment.objects.filter(user=source).delete()
    moved = LessonProgress.objects.select_for_update().filter(user__in=[source, target]).order_by("pk")
    by_lesson: dict[int, dict[int, LessonProgress]] = {}
    for record in moved:
        by_lesson.setdefault(record.lesson_id, {})[record.user_id] = record
    for records in by_lesson.values():
        theirs, ours = records.get(source.pk), records.get(target.pk)
        if theirs is None:
            continue
        if ours is None:
            LessonProgress.objects.filter(pk=theirs.pk).update(user=target)
            continue
        watched = bytes(ours.watched), bytes(theirs.watched)
        merged = bytes(a | b for a, b in zip(*(w.ljust(max(map(len, watched)), b"\0") for w in watched), strict=True))
        ours.watched = merged
        ours.seconds_watched = progress.bitmap_count(merged, total=len(merged) * 8)
        done = [at for at in (ours.completed_at, theirs.completed_at) if at is not None]
        ours.completed_at = min(done) if done else None
        clocks = [at for at in (ours.credit_clock, theirs.credit_clock) if at is not None]
        ours.credit_clock = max(clocks) if clocks else None
        theirs.delete()
        ours.save()
