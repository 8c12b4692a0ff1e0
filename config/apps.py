from __future__ import annotations

from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """No models: the project-wide system checks of whether settings fit together (config/checks.py),
    and the database lookups every app may use (core/db.py)."""

    name = "config"
    verbose_name = "Configuration"

    def ready(self) -> None:
        from config import checks  # noqa: F401 - registers the checks
        from core import db

        db.install()
