"""How pages in courses ask whether someone may see a lesson, without importing playback.

playback/access.py is the one place that decides who may watch; it registers itself here in its
AppConfig.ready (courses never imports playback). Until a policy is registered, nobody is entitled:
a page that shows a lesson's title or description must fail closed."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser

from courses.models import Lesson

EntitlementPolicy = Callable[..., bool]
_policy: list[EntitlementPolicy] = []


def entitlement_policy_register(policy: EntitlementPolicy) -> None:
    """Called once by playback: ``policy(user=..., lesson=...)`` is True when the user may see the lesson."""
    _policy[:] = [policy]


def lesson_entitled(*, user: AbstractBaseUser | AnonymousUser, lesson: Lesson) -> bool:
    """Whether ``user`` may see ``lesson`` (its title, description and player). Pass a lesson fetched
    with ``selectors.lesson_get(viewer=user)`` so the decision needs no further query."""
    return bool(_policy) and _policy[0](user=user, lesson=lesson)
