"""Upload grants: a credential that lets one user upload the video of one lesson through the same
upload APIs as the admin widget (tus and direct to S3), without a session cookie and without being
an educator of the site (docs/adr/0033: an LMS instructor uploading from the lesson picker).

A higher app issues the grant (lti, in the picker) and registers a resolver that turns the grant's
opaque ``scope`` into the quota the upload counts against, or refuses it (the platform's switch was
turned off since). The token is signed with the site's secret under its own salt, names the user,
the lesson and the scope, and expires; it is sent as ``Authorization: LessonUpload <token>`` and
accepted only by the upload endpoints (their ``authentication_classes``), where it allows exactly
that lesson's upload and the uploads that user started for it: nothing else of the API.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core import signing
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from core import errors
from courses.models import Lesson
from media_pipeline import uploads

KEYWORD = "LessonUpload"
_SALT = "courses.upload-grant"


class GrantRefused(uploads.UploadError, errors.NotAllowed):
    """The grant's issuer no longer allows this upload (e.g. uploads from that LMS were turned off)."""


@dataclass(frozen=True)
class UploadGrant:
    user_id: int
    lesson: str  # the lesson's public id
    scope: dict[str, Any]
    expires_at: int
    quota: uploads.QuotaScope | None = None  # filled in by the resolver when the grant is used


GrantResolver = Callable[..., uploads.QuotaScope]
_resolver: list[GrantResolver] = []


def upload_grant_resolver_register(resolver: GrantResolver) -> None:
    """Called once by the app that issues grants: ``resolver(grant=..., user=...)`` returns the quota the
    grant's uploads count against, or raises GrantRefused."""
    _resolver[:] = [resolver]


def upload_grant_issue(*, user: User, lesson: Lesson, scope: dict[str, Any], seconds: int) -> str:
    """A token that lets ``user`` upload the video of ``lesson`` for ``seconds``."""
    expires_at = int(time.time()) + seconds
    return signing.dumps(
        {"u": user.pk, "l": str(lesson.public_id), "s": scope, "x": expires_at}, salt=_SALT, compress=True
    )


def upload_grant_read(*, token: str) -> UploadGrant | None:
    """The grant a token holds while it is valid (signed here, not expired), else None."""
    try:
        data = signing.loads(token, salt=_SALT)
        grant = UploadGrant(user_id=int(data["u"]), lesson=str(data["l"]), scope=dict(data["s"]),
                            expires_at=int(data["x"]))  # fmt: skip
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    return grant if grant.expires_at > time.time() else None


def upload_grant_resolve(*, grant: UploadGrant, user: User) -> UploadGrant:
    """The grant with its quota, as its issuer decides now; raises GrantRefused when it no longer allows it."""
    if not _resolver:
        raise GrantRefused("uploads with this link are not accepted here")
    return dataclasses.replace(grant, quota=_resolver[0](grant=grant, user=user))


def upload_grant_of(request: Request) -> UploadGrant | None:
    """The grant the request was authenticated with, if it was."""
    return request.auth if isinstance(request.auth, UploadGrant) else None


class UploadGrantAuthentication(BaseAuthentication):
    """``Authorization: LessonUpload <token>`` on the upload endpoints. Listed before the session so a
    page that holds a grant is never asked for a CSRF token (the grant in a header is not ambient)."""

    def authenticate(self, request: Request) -> tuple[User, UploadGrant] | None:
        keyword, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if keyword != KEYWORD:
            return None
        grant = upload_grant_read(token=token.strip())
        if grant is None:
            raise AuthenticationFailed("this upload link is not valid or has expired; start the upload again")
        user = get_user_model().objects.filter(pk=grant.user_id, is_active=True).first()
        if user is None:
            raise AuthenticationFailed("this upload link is not valid or has expired; start the upload again")
        try:
            return user, upload_grant_resolve(grant=grant, user=user)
        except GrantRefused as exc:
            raise AuthenticationFailed(str(exc)) from exc


class UploadGrantScheme(OpenApiAuthenticationExtension):
    """The grant in the OpenAPI schema, beside session and token authentication."""

    target_class = UploadGrantAuthentication
    name = "uploadGrant"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": f"`{KEYWORD} <grant>`: an upload grant for one lesson, from the LMS lesson picker",
        }
