"""Progress reports as the player sends them: a view token as a playback session issues it (issued when
the test says, so a test controls time instead of sleeping), and a gradebook column to watch."""

from __future__ import annotations

import time
import uuid

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from courses.models import Lesson
from courses.view_tokens import view_token_issue
from lti import messages
from lti.models import LtiDeployment, LtiLaunchGrant, LtiPlatform, LtiResourceLink, LtiUser


def view_token(*, user: User, lesson: Lesson, issued_at: float | None = None, ago: float = 0) -> str:
    """The token a playback session for ``user`` and ``lesson`` would carry, issued at ``issued_at``
    (Unix seconds), or ``ago`` seconds before now: a viewing that began that long ago."""
    return view_token_issue(
        secret=settings.VIEW_TOKEN_SECRET.encode(),
        view_id=str(uuid.uuid4()),
        lesson=str(lesson.public_id),
        user_id=user.pk,
        issued_at=int(issued_at if issued_at is not None else time.time() - ago),
    )


def graded_link(*, user: User, lesson: Lesson) -> LtiResourceLink:
    """``user`` launched ``lesson`` from an LMS line item with the score scope: progress sends scores."""
    platform = LtiPlatform.objects.create(
        issuer="https://lms.example.edu",
        client_id="tool-1",
        auth_login_url="https://lms.example.edu/auth",
        auth_token_url="https://lms.example.edu/token",
        jwks_url="https://lms.example.edu/jwks",
    )
    deployment = LtiDeployment.objects.create(platform=platform, deployment_id="1")
    link = LtiResourceLink.objects.create(
        deployment=deployment,
        resource_link_id="link-1",
        lesson=lesson,
        lineitem_url="https://lms.example.edu/lineitems/1",
        ags_scopes=[messages.SCOPE_SCORE],
    )
    lti_user = LtiUser.objects.create(issuer=platform.issuer, sub=f"sub-{user.pk}", user=user)
    LtiLaunchGrant.objects.create(user=user, lti_user=lti_user, resource_link=link, last_launch_at=timezone.now())
    return link
