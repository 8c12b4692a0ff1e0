"""The production settings for the web process of tests/security, with one change that only makes
things faster, as tests/conftest.py makes for in-process tests: static files without the
collectstatic manifest (templates would otherwise need a collectstatic run first)."""

from __future__ import annotations

from config.settings import *  # noqa: F403
from config.settings import STORAGES

STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
