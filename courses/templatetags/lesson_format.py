"""Presentation filters for the learner pages."""

from __future__ import annotations

from django import template

from courses.progress import PLAYBACK_RATES

register = template.Library()


def _whole_seconds(value: float | int | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        seconds = round(float(value))
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


@register.filter
def clock(value: float | int | None) -> str:
    """A duration in seconds as a clock reading: 75 -> "1:15", 3725 -> "1:02:05"; "" when unknown."""
    seconds = _whole_seconds(value)
    if seconds is None:
        return ""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@register.filter
def iso_duration(value: float | int | None) -> str:
    """A duration in seconds for a <time datetime> attribute: 75 -> "PT75S"; "" when unknown."""
    seconds = _whole_seconds(value)
    return "" if seconds is None else f"PT{seconds}S"


@register.simple_tag
def playback_rates() -> list[str]:
    """The player's speeds as option values ("0.75", "1", ... "2"): the ones progress credit allows for."""
    return [f"{rate:g}" for rate in PLAYBACK_RATES]
