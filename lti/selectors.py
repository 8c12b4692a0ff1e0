"""Reads about LTI registrations and launches that other code reuses."""

from __future__ import annotations

import functools

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet

from courses.models import Lesson
from lti.messages import origin_of
from lti.models import LtiDeployment, LtiLaunchGrant, LtiPlatform, LtiResourceLink


def user_launched_lesson(*, user: AbstractBaseUser | AnonymousUser, lesson: Lesson) -> bool:
    """The user launched, from an active platform, a resource link that points at this lesson."""
    if not user.is_authenticated:
        return False
    return launch_grants_of(user=user).filter(resource_link__lesson=lesson).exists()


def launch_grants_of(*, user: AbstractBaseUser) -> QuerySet[LtiLaunchGrant]:
    """The user's launch grants from active platforms."""
    return LtiLaunchGrant.objects.filter(user_id=user.pk, resource_link__deployment__platform__active=True)


@functools.cache
def launched_lesson_sql() -> str:
    """user_launched_lesson as a portable SQL condition (PostgreSQL and the embedded SQLite) on the outer
    lesson row, with one %s for the user's id: courses.selectors.lesson_get fetches it with the lesson
    (registered in courses.hooks by LtiConfig.ready)."""
    lesson = Lesson._meta.db_table
    return (
        f'EXISTS (SELECT 1 FROM "{LtiLaunchGrant._meta.db_table}" g'
        f' JOIN "{LtiResourceLink._meta.db_table}" r ON r.id = g.resource_link_id'
        f' JOIN "{LtiDeployment._meta.db_table}" d ON d.id = r.deployment_id'
        f' JOIN "{LtiPlatform._meta.db_table}" p ON p.id = d.platform_id'
        f' WHERE g.user_id = %s AND r.lesson_id = "{lesson}".id AND p.active)'
    )


def platform_frame_origins() -> list[str]:
    """Origins allowed to frame LTI pages: each active platform's issuer, login URL and listed origins."""
    origins: set[str] = set()
    for platform in LtiPlatform.objects.filter(active=True).only("issuer", "auth_login_url", "frame_origins"):
        candidates = [platform.issuer, platform.auth_login_url, *platform.frame_origins.split()]
        origins.update(origin for origin in map(origin_of, candidates) if origin)
    return sorted(origins)


def platform_foreign_endpoints(
    *, issuer: str, auth_login_url: str, auth_token_url: str, jwks_url: str, auth_token_audience: str, **_: object
) -> list[tuple[str, str]]:
    """Endpoints (and the token audience) outside the issuer's origin, as (label, value) pairs.

    Legitimate for some platforms (Canvas signs in through another host), but these are where the
    tool sends browsers and signed client assertions: an operator approves them explicitly."""
    home = origin_of(issuer)
    named = [
        ("login (OIDC authorization) endpoint", auth_login_url),
        ("token endpoint", auth_token_url),
        ("public keys (JWKS)", jwks_url),
        ("token audience", auth_token_audience),
    ]
    return [(label, value) for label, value in named if value and origin_of(value) != home]


def platform_foreign_endpoints_of(platform: LtiPlatform) -> list[tuple[str, str]]:
    return platform_foreign_endpoints(
        issuer=platform.issuer,
        auth_login_url=platform.auth_login_url,
        auth_token_url=platform.auth_token_url,
        jwks_url=platform.jwks_url,
        auth_token_audience=platform.auth_token_audience,
    )
