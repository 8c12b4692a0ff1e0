"""Key release: the one path by which a content key leaves the server (ClearKey license, HLS key).

Checks, in order, before any key is read: an authentic unexpired license token; the same user and
session as the token's; key ids the token names; the lesson still watchable by this user
(playback/access.py); the version's key on record. Every answer to an authentic token is audited
(KeyRelease); malformed requests and forged or expired tokens are refused before anyone is known.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser, User

from core import errors
from courses.selectors import lesson_get
from media_pipeline.content_keys import ContentKeyMaterial, KeyUnreadable
from media_pipeline.selectors import content_key_get
from playback.access import can_watch
from playback.drm import license_tokens
from playback.models import KeyRelease, KeyReleaseOutcome


class KeyRefused(errors.NotAllowed):
    """No key for this request: the token, the viewer, the session or the key id is not right."""

    @property
    def reason(self) -> str:
        return str(self)


class KeyNotReleasable(errors.Misconfigured, KeyRefused):  # the kind first: it decides the status
    """The key exists but cannot be opened (CONTENT_KEY_SECRET changed?): the operator must act."""


@dataclass(frozen=True)
class Requester:
    user: AbstractBaseUser | AnonymousUser
    session_key: str | None
    ip: str | None


def bearer_token(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise KeyRefused("a license token is required (Authorization: Bearer)")
    return token.strip()


def keys_release(*, requester: Requester, token: str, kids: list[str], endpoint: str) -> list[ContentKeyMaterial]:
    try:
        claims = license_tokens.token_verify(
            secret=settings.DRM_LICENSE_TOKEN_SECRET.encode(), token=token, now=int(time.time())
        )
    except license_tokens.LicenseTokenInvalid as exc:
        raise KeyRefused(str(exc)) from exc

    def refuse(reason: str, kid: str, *, kind: type[KeyRefused] = KeyRefused) -> KeyRefused:
        _audit(requester, claims, kid=kid, endpoint=endpoint, outcome=KeyReleaseOutcome.DENIED, reason=reason)
        return kind(reason)

    user = requester.user
    first_kid = kids[0]
    if not user.is_authenticated or str(user.pk) != claims.user_id:
        raise refuse("the license token belongs to another viewer", first_kid)
    if claims.session and claims.session != license_tokens.session_binding(requester.session_key):
        raise refuse("the license token belongs to another session", first_kid)
    unknown = [kid for kid in kids if kid not in claims.kids]
    if unknown:
        raise refuse("unknown key id", unknown[0])
    try:
        lesson = lesson_get(public_id=uuid.UUID(claims.lesson), viewer=user)
    except ValueError:
        lesson = None
    if lesson is None or not can_watch(user=user, lesson=lesson).allowed:
        raise refuse("not entitled to this lesson", first_kid)
    keys = []
    for kid in kids:
        try:
            material = content_key_get(asset=lesson.asset, version=claims.version, kid=kid) if lesson.asset else None
        except KeyUnreadable as exc:
            raise refuse("the key cannot be read", kid, kind=KeyNotReleasable) from exc
        if material is None:
            raise refuse("unknown key id", kid)
        keys.append(material)
    for material in keys:
        _audit(
            requester, claims, kid=material.kid_hex, endpoint=endpoint, outcome=KeyReleaseOutcome.RELEASED, reason=""
        )
    return keys


def _audit(
    requester: Requester,
    claims: license_tokens.LicenseClaims,
    *,
    kid: str,
    endpoint: str,
    outcome: str,
    reason: str,
) -> None:
    try:
        lesson = uuid.UUID(claims.lesson)
    except ValueError:
        lesson = uuid.UUID(int=0)
    user = requester.user
    KeyRelease.objects.create(
        user=user if isinstance(user, User) else None,
        lesson_public_id=lesson,
        version=max(0, claims.version),
        kid=uuid.UUID(hex=kid),
        endpoint=endpoint,
        outcome=outcome,
        reason=reason[:200],
        ip=requester.ip or None,
    )
