"""The lesson picker's rules that need no database (pure): lesson ids as posted, the selection kept
across the picker's pages, and how a video's length is shown."""

from __future__ import annotations

import uuid
from collections.abc import Sequence


def lesson_id_parse(value: str) -> str | None:
    """The canonical form of a lesson's public id, or None if ``value`` is not one."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


def selection_update(*, selected: Sequence[str], shown: Sequence[str], checked: Sequence[str],
                     multiple: bool) -> list[str]:  # fmt: skip
    """The instructor's selection after one submit of a picker page, in the order they chose.

    ``selected`` is what earlier pages chose; ``shown`` the lessons this page listed and ``checked``
    those ticked on it. With multiple selection a lesson shown and not ticked leaves the selection,
    lessons ticked here join it at the end; with single selection a lesson ticked here replaces it.
    Ids that are not lesson ids are kept as they are: the response refuses them."""
    if not multiple:
        return list(checked) if checked else list(selected)
    unticked = set(shown) - set(checked)
    kept = [lesson_id for lesson_id in dict.fromkeys(selected) if lesson_id not in unticked]
    return kept + [lesson_id for lesson_id in dict.fromkeys(checked) if lesson_id not in kept]


def duration_text(seconds: float | None) -> str:
    """A video's length as the picker shows it (m:ss, or h:mm:ss); empty when not known yet."""
    if not seconds or seconds < 0:
        return ""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
