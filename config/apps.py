from __future__ import annotations

from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """No models: the project-wide system checks of whether settings fit together (config/checks.py)."""

    name = "config"
    verbose_name = "Configuration"

    def ready(self) -> None:
        from config import checks  # noqa: F401 - registers the checks
