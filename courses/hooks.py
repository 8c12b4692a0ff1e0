"""Named hooks through which apps above courses react to it or add to it, without courses importing them.

An app registers itself in its ``AppConfig.ready`` (lti: its gradebook passback and its launch grants);
courses calls what is registered, with keyword arguments. The hooks are listed in docs/architecture.md.
The playback entitlement policy (courses/entitlement.py) is the same pattern.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser, User
    from django.http import HttpRequest

    from courses.models import Lesson

logger = logging.getLogger(__name__)

# --- Progress recorded -------------------------------------------------------------------------------

ProgressRecordedListener = Callable[..., object]
progress_recorded_listeners: list[ProgressRecordedListener] = []


def progress_recorded_listen(listener: ProgressRecordedListener) -> ProgressRecordedListener:
    """Call ``listener(user=..., lesson=..., share=..., completed=...)`` after each progress report commits.

    ``share`` is the part (0 to 1) of the lesson's seconds credited to the user so far, ``completed``
    whether the lesson counts as completed for them. Registering the same listener twice keeps one."""
    if listener not in progress_recorded_listeners:
        progress_recorded_listeners.append(listener)
    return listener


def progress_recorded_notify(*, user: User, lesson: Lesson, share: float, completed: bool) -> None:
    """Tell every listener (courses.services calls this once the progress is committed).

    The progress is saved whatever a listener does: a listener that fails is logged, and the others
    are still told."""
    for listener in list(progress_recorded_listeners):
        try:
            listener(user=user, lesson=lesson, share=share, completed=completed)
        except Exception:
            logger.exception("progress listener %r failed for lesson %s", listener, lesson.pk)


# --- Launched from elsewhere -------------------------------------------------------------------------

LaunchedSql = Callable[[], str]
LaunchedCheck = Callable[..., bool]
_launch_source: list[tuple[LaunchedSql, LaunchedCheck]] = []


def lesson_launch_source_register(*, sql: LaunchedSql, check: LaunchedCheck) -> None:
    """Called once by lti: how courses learns that a user launched a lesson from an LMS.

    ``sql()`` is a portable SQL condition with one ``%s`` (the user's id), true when that user launched
    the lesson of the outer ``courses_lesson`` row (selectors.lesson_get fetches it with the lesson);
    ``check(user=..., lesson=...)`` answers the same question on its own."""
    _launch_source[:] = [(sql, check)]


def lesson_launched_sql() -> str | None:
    """The registered SQL condition, or None when no app launches lessons (nobody launched anything)."""
    return _launch_source[0][0]() if _launch_source else None


def lesson_launched(*, user: AbstractBaseUser | AnonymousUser, lesson: Lesson) -> bool:
    """Whether ``user`` launched ``lesson`` from elsewhere (an LMS); False until a source is registered."""
    return bool(_launch_source) and _launch_source[0][1](user=user, lesson=lesson)


# --- Account page sections ---------------------------------------------------------------------------

AccountSection = Callable[..., str]
account_sections: list[AccountSection] = []


def account_section_register(section: AccountSection) -> AccountSection:
    """Add a section to the account page (/account/): ``section(request=...)`` returns its HTML, already
    escaped (a rendered template), or "" to show nothing. lti lists the LMS identities linked to the
    account; sections appear in the order they were registered, and registering twice keeps one."""
    if section not in account_sections:
        account_sections.append(section)
    return section


def account_sections_render(*, request: HttpRequest) -> list[str]:
    """Every registered section's HTML for the signed-in user of ``request`` (empty ones left out)."""
    return [html for html in (section(request=request) for section in list(account_sections)) if html]
