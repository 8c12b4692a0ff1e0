"""The storage backend a test runs against, when it is not the configured one."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def use_local_storage(settings: Any, folder: Path) -> None:
    """The embedded backend (a local folder) as the default storage for this test (``settings``:
    pytest-django's fixture, which restores the configured one afterwards)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(folder)}},
    }
