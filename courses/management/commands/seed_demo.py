"""Seed a demo course with one lesson whose video is generated and run through the real pipeline.

Idempotent: a second run finds the published lesson and only prints the logins.
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from courses import services
from courses.demo import render_demo_video
from courses.models import Course, Lesson
from media_pipeline import services as media_services

COURSE_SLUG = "welcome"
LESSON_TITLE = "How adaptive streaming works"
LEARNER = "learner"


def _password_file(name: str) -> Path:
    return Path(settings.VAR_DIR) / f"{name}-password"


def _stored_password(name: str) -> str:
    path = _password_file(name)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(12))
        path.chmod(0o600)
    return path.read_text().strip()


class Command(BaseCommand):
    help = "Create the demo course, a learner account and a lesson with a generated lecture video."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-wait", action="store_true", help="do not wait for the video to be published")
        parser.add_argument("--timeout", type=float, default=600.0)

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        password = _stored_password(LEARNER)
        learner, created = user_model.objects.get_or_create(username=LEARNER, defaults={"email": ""})
        if created or not learner.check_password(password):
            learner.set_password(password)
            learner.save()

        course = Course.objects.filter(slug=COURSE_SLUG).first()
        if course is None:
            course = services.course_create(
                slug=COURSE_SLUG,
                title="Welcome to video lessons",
                description="A short demo course. Its lesson video was generated and encoded on this machine.",
                educators=user_model.objects.filter(is_superuser=True),
                published=True,
            )
        services.enrollment_create(user=learner, course=course)

        lesson = Lesson.objects.filter(course=course, title=LESSON_TITLE).select_related("asset").first()
        if lesson is None:
            lesson = services.lesson_create(
                course=course,
                title=LESSON_TITLE,
                description="Upload once, encode a ladder, package for HLS and DASH, deliver, measure.",
            )
        asset = lesson.asset
        if asset is None or asset.status == "failed":
            self.stdout.write("Generating the demo lecture video (about 30 s of slides and a tone)...")
            with tempfile.TemporaryDirectory(dir=settings.MEDIA_WORK_DIR) as workdir:
                video = render_demo_video(
                    ffmpeg=settings.FFMPEG_BIN, target=Path(workdir) / "demo-lecture.mp4", workdir=Path(workdir)
                )
                with transaction.atomic(), video.open("rb") as stream:
                    lesson = services.lesson_attach_video(lesson=lesson, stream=stream, source_name=video.name)
            asset = lesson.asset
        if asset is None:
            raise CommandError("the demo lesson has no video after the upload")

        if not asset.is_playable and not options["no_wait"]:
            self.stdout.write("Encoding the demo lesson with the real pipeline...")
            try:
                asset = media_services.asset_wait(asset_id=asset.pk, timeout=options["timeout"])
            except TimeoutError as exc:
                raise CommandError("the demo lesson was not published in time; is the worker running?") from exc
            if asset.status == "failed":
                raise CommandError(f"the demo lesson failed: {asset.failure_reason}")

        self.stdout.write(
            f"Demo lesson: {settings.SITE_URL}/lessons/{lesson.public_id}/ ({asset.get_status_display()})"
        )
        self.stdout.write(f"Learner login: {LEARNER} / {password}")
