"""Benchmark settings: the real settings plus a no-op endpoint for the baseline (never deployed)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
