"""Abort expired or orphaned resumable uploads and finish ones whose web process died. Safe any time."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from media_pipeline import uploads


class Command(BaseCommand):
    help = "Abort expired unfinished uploads (S3 multipart uploads, spool objects, .part files); finish stuck ones."

    def handle(self, *args: Any, **options: Any) -> None:
        counts = uploads.uploads_sweep()
        collected = f", collected {counts['collected']} replaced original(s)" if counts["collected"] else ""
        self.stdout.write(f"expired {counts['expired']} upload(s), finished {counts['finished']} upload(s){collected}")
