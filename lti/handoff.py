"""Carry a launch into a new window when the LMS iframe cannot keep our session cookie.

The launch redirects the iframe to the lesson with a short-lived, single-use, signed handoff token;
if the session cookie did not stick there, the page offers "open in a new window", where the token
logs the user in first-party. The token names the user and the lesson, lives HANDOFF_SECONDS and is
consumed through the nonce table, so a copy of the URL is worth nothing afterwards."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from courses.models import Lesson
from lti.errors import LtiRefused
from lti.models import LtiNonce

HANDOFF_SECONDS = 120
_SALT = "lti-handoff"


def handoff_token_create(*, user: User, lesson: Lesson) -> str:
    return signing.dumps({"u": user.pk, "l": str(lesson.public_id), "n": secrets.token_urlsafe(16)}, salt=_SALT)


def handoff_token_peek(*, token: str) -> str | None:
    """The lesson a still-valid token is for (without consuming it), or None."""
    try:
        return signing.loads(token, salt=_SALT, max_age=HANDOFF_SECONDS)["l"]
    except (signing.BadSignature, KeyError, TypeError):
        return None


@transaction.atomic
def handoff_token_consume(*, token: str) -> tuple[User, str]:
    try:
        data = signing.loads(token, salt=_SALT, max_age=HANDOFF_SECONDS)
    except signing.SignatureExpired as exc:
        raise LtiRefused("this link has expired; open the lesson again from the course") from exc
    except signing.BadSignature as exc:
        raise LtiRefused("this link is not valid") from exc
    try:
        with transaction.atomic():
            LtiNonce.objects.create(
                issuer="handoff", value=data["n"], expires_at=timezone.now() + timedelta(seconds=HANDOFF_SECONDS)
            )
    except IntegrityError as exc:
        raise LtiRefused("this link was already used; open the lesson again from the course") from exc
    user = get_user_model().objects.filter(pk=data["u"], is_active=True).first()
    if user is None:
        raise LtiRefused("this account is not active")
    return user, data["l"]
