"""Ingest a local video file as a new lesson.

    python manage.py ingest FILE --course SLUG --title TITLE [--protected] [--wait] [--timeout SECONDS]

Prints the lesson's public id as the last line. With --wait, exits 0 only once the lesson
is published, and non-zero with a one-line reason if the input is rejected or fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from courses import services
from courses.models import Course
from media_pipeline import services as media_services


class Command(BaseCommand):
    help = "Ingest a local video file as a lesson of a course."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--course", required=True, help="slug of an existing course")
        parser.add_argument("--title", required=True)
        parser.add_argument("--description", default="")
        parser.add_argument("--protected", action="store_true", help="encrypt the video (content protection)")
        parser.add_argument("--wait", action="store_true", help="wait until the lesson is published or fails")
        parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait with --wait")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        if path.stat().st_size == 0:
            raise CommandError(f"{path}: the file is empty")
        course = Course.objects.filter(slug=options["course"]).first()
        if course is None:
            raise CommandError(f"course {options['course']!r} does not exist")

        with transaction.atomic(), path.open("rb") as stream:
            lesson = services.lesson_create(
                course=course,
                title=options["title"],
                description=options["description"],
                protected=options["protected"],
            )
            lesson = services.lesson_attach_video(lesson=lesson, stream=stream, source_name=path.name)

        if options["wait"]:
            if lesson.asset_id is None:
                raise CommandError(f"lesson {lesson.public_id} has no video after the upload")
            try:
                asset = media_services.asset_wait(asset_id=lesson.asset_id, timeout=options["timeout"])
            except TimeoutError as exc:
                raise CommandError(f"lesson {lesson.public_id} not published after {options['timeout']:.0f} s") from exc
            if not asset.is_playable or asset.status != "ready":
                reason = asset.failure_reason or asset.get_status_display()
                raise CommandError(f"rejected: {reason}")
        self.stdout.write(str(lesson.public_id))
