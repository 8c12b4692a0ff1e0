"""Carry a launch into a new window when the LMS iframe cannot keep our session cookie.

The launch redirects the iframe to the lesson with a short-lived, single-use, signed handoff token;
if the session cookie did not stick there, the page offers "open in a new window", where the token
logs the user in first-party. The token names the user and the lesson (or the LMS context whose
instructor page is opened), lives HANDOFF_SECONDS and is consumed through the nonce table, so a copy of
the URL is worth nothing afterwards."""

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


def handoff_token_create(*, user: User, lesson: Lesson | None = None, context_public_id: str = "") -> str:
    """A token for the lesson's page, or (with context_public_id) for that context's instructor page."""
    data = {"u": user.pk, "l": str(lesson.public_id) if lesson else "", "n": secrets.token_urlsafe(16)}
    if context_public_id:
        data["c"] = context_public_id
    return signing.dumps(data, salt=_SALT)


def handoff_token_peek_context(*, token: str) -> str | None:
    """The context whose instructor page a still-valid token is for (without consuming it), or None."""
    try:
        return signing.loads(token, salt=_SALT, max_age=HANDOFF_SECONDS).get("c") or None
    except (signing.BadSignature, AttributeError, TypeError):
        return None


def handoff_token_peek(*, token: str) -> str | None:
    """The lesson a still-valid token is for (without consuming it), or None."""
    try:
        return signing.loads(token, salt=_SALT, max_age=HANDOFF_SECONDS)["l"]
    except (signing.BadSignature, KeyError, TypeError):
        return None


def handoff_token_consume(*, token: str) -> tuple[User, str]:
    """Sign-in for a lesson's page: the user and the lesson's public id."""
    user, lesson, _ = handoff_token_consume_target(token=token)
    return user, lesson


@transaction.atomic
def handoff_token_consume_target(*, token: str) -> tuple[User, str, str]:
    """The user, the lesson's public id and the instructor page's context public id ("" when none)."""
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
    return user, data["l"], data.get("c", "")
