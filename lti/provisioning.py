"""What a valid launch creates or updates: the user, the course of the context, its educators and
learners, the resource link and its lesson, and the launch grant that lets the learner watch it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from courses import services as course_services
from courses.models import Course, Lesson, LessonState
from lti import claims, educators, gradebook, linking, messages
from lti.errors import LtiError, LtiNotFound, LtiRefused
from lti.models import (
    LtiContext,
    LtiDeployment,
    LtiEducatorGrant,
    LtiLaunchGrant,
    LtiPlatform,
    LtiResourceLink,
    LtiUser,
)


@dataclass(frozen=True)
class LaunchResult:
    """What a completed launch provisioned: the user, and the lesson and link it opens (if any)."""

    user: User
    message: claims.LaunchMessage
    deployment: LtiDeployment
    lesson: Lesson | None
    resource_link: LtiResourceLink | None
    educator: bool
    identity: LtiUser | None = None
    linked_by_email: bool = False  # this launch linked the identity by email: the page must say so


def lti_user_provision(*, issuer: str, sub: str, claims_: dict) -> tuple[LtiUser, User]:
    """The user for issuer + sub (a roster's members; launches use lti_identity_provision)."""
    provisioned = lti_identity_provision(issuer=issuer, sub=sub, claims_=claims_)
    return provisioned.identity, provisioned.user


@dataclass(frozen=True)
class Provisioned:
    identity: LtiUser
    user: User
    linked_now: bool  # linked by email by this very call


def lti_identity_provision(*, issuer: str, sub: str, claims_: dict, link_by_email: bool = False) -> Provisioned:
    """The user for issuer + sub, and whether this call linked it by email.

    On first sight the identity gets a placeholder account ``lti-<digest>``, or, with ``link_by_email``
    (the platform's link_accounts_by_email), the one account whose email is the launch's (linking.py).
    A placeholder's name and email follow the LMS; a linked account's never do: an LMS must not be able
    to change the email (and so the password resets) of an account of this site."""
    user_model = get_user_model()
    linked_now = False
    identity = LtiUser.objects.select_related("user").filter(issuer=issuer, sub=sub).first()
    if identity is None:
        target = linking.email_link_target(email=claims_.get("email")) if link_by_email else None
        try:
            with transaction.atomic():
                if target is not None:
                    identity = LtiUser.objects.create(
                        issuer=issuer, sub=sub, user=target, linked_at=timezone.now(), link_method=linking.METHOD_EMAIL
                    )
                    linked_now = True
                else:
                    username = linking.placeholder_username(issuer=issuer, sub=sub)
                    user = user_model.objects.create_user(username=username, password=None)
                    identity = LtiUser.objects.create(issuer=issuer, sub=sub, user=user)
        except IntegrityError:  # the same person's first launch in two tabs at once: the other one won
            identity = LtiUser.objects.select_related("user").get(issuer=issuer, sub=sub)
            linked_now = False
    user = identity.user
    if identity.linked_at is not None:
        return Provisioned(identity=identity, user=user, linked_now=linked_now)
    changed = []
    for field, claim in (("first_name", "given_name"), ("last_name", "family_name"), ("email", "email")):
        value = claims_.get(claim)
        if isinstance(value, str) and value and getattr(user, field) != value[:150]:
            setattr(user, field, value[:150])
            changed.append(field)
    if not claims_.get("given_name") and isinstance(claims_.get("name"), str) and not user.first_name:
        user.first_name = claims_["name"][:150]
        changed.append("first_name")
    if changed:
        user.save(update_fields=changed)
    return Provisioned(identity=identity, user=user, linked_now=linked_now)


def lesson_grant_sign(*, platform: LtiPlatform, public_id: str) -> str:
    """Proof, carried in a deep-linked item's custom parameters, that we offered this lesson to this platform."""
    return signing.Signer(salt=f"lti-lesson:{platform.issuer}:{platform.client_id}").signature(public_id)


def _lesson_from_custom(
    *, message: claims.LaunchMessage, platform: LtiPlatform, context: LtiContext | None, user: User
) -> Lesson | None:
    value = message.custom.get("lesson")
    if not value:
        return None
    try:
        public_id = str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise LtiError("the link's lesson parameter is not a lesson id") from exc
    lesson = Lesson.objects.select_related("course").filter(public_id=public_id).first()
    if lesson is None:
        raise LtiNotFound("the lesson this link points to does not exist")
    course = lesson.course
    grant = str(message.custom.get("lesson_grant", ""))
    allowed = (
        (course.published and lesson.state == LessonState.PUBLISHED)
        or (context is not None and context.course_id == course.pk)
        or (grant and constant_time_compare(grant, lesson_grant_sign(platform=platform, public_id=public_id)))
        or course.educators.filter(pk=user.pk).exists()
    )
    if not allowed:
        raise LtiRefused("this lesson is not available to this platform")
    return lesson


def _context_provision(*, deployment: LtiDeployment, message: claims.LaunchMessage, user: User,
                       educator: bool) -> LtiContext | None:  # fmt: skip
    data = message.context
    if not data:
        return None
    context, _ = LtiContext.objects.get_or_create(deployment=deployment, context_id=data["id"])
    # Lock it: two instructors opening a new LMS course at once must end up with one course.
    context = LtiContext.objects.select_for_update().get(pk=context.pk)
    context.title = str(data.get("title") or context.title)[:255]
    context.label = str(data.get("label") or context.label)[:255]
    memberships = message.nrps.get("context_memberships_url")
    if isinstance(memberships, str) and memberships:
        context.memberships_url = memberships[:500]
    if context.course_id is None and educator:
        title = context.title or context.label or "LMS course"
        context.course = course_services.course_create(
            slug=f"lti-{uuid.uuid4().hex[:12]}", title=title[:200], description="Linked from an LMS.", educators=[user]
        )
        context.save()
        LtiEducatorGrant.objects.create(context=context, user=user)  # LTI made this membership (lti/educators.py)
        return context
    context.save()
    return context


def provision(*, platform: LtiPlatform, deployment: LtiDeployment, message: claims.LaunchMessage) -> LaunchResult:
    provisioned = lti_identity_provision(
        issuer=message.issuer, sub=message.sub, claims_=message.claims, link_by_email=platform.link_accounts_by_email
    )
    identity, user, linked_now = provisioned.identity, provisioned.user, provisioned.linked_now
    if not user.is_active:
        raise LtiRefused("the account this LMS user signs in to here is not active; ask the site's operator")
    educator = claims.is_educator(message.roles, teaching_assistants=platform.teaching_assistants_instruct)
    context = _context_provision(deployment=deployment, message=message, user=user, educator=educator)
    course: Course | None = context.course if context else None
    if course is not None and context is not None:
        if educator:
            educators.educator_grant(context=context, user=user)
        else:
            # Demoted in the LMS (or never an instructor): what LTI gave goes now, not at the next roster sync.
            educators.educator_revoke(context=context, user=user)
        if claims.is_learner(message.roles):
            course_services.enrollment_create(user=user, course=course)
    if message.message_type != claims.RESOURCE_LINK_REQUEST:
        return LaunchResult(user=user, message=message, deployment=deployment, lesson=None, resource_link=None,
                            educator=educator, identity=identity, linked_by_email=linked_now)  # fmt: skip

    link_claim = message.claims[claims.RESOURCE_LINK]
    link, _ = LtiResourceLink.objects.get_or_create(deployment=deployment, resource_link_id=link_claim["id"])
    lesson = _lesson_from_custom(message=message, platform=platform, context=context, user=user)
    if lesson is not None:
        link.lesson = lesson
    link.context = context or link.context
    link.title = str(link_claim.get("title") or link.title)[:255]
    ags = message.ags
    if isinstance(ags.get("lineitem"), str):
        link.lineitem_url = ags["lineitem"][:500]
    if isinstance(ags.get("lineitems"), str):
        link.lineitems_url = ags["lineitems"][:500]
    if isinstance(ags.get("scope"), list):
        link.ags_scopes = [str(scope) for scope in ags["scope"]][:10]
    if ags:
        # Only what the claim says is decided here; finding or making the column is the workers' job (ags.py).
        link.grades_blocked_reason = messages.gradebook_access(
            scopes=link.ags_scopes, lineitem_url=link.lineitem_url, lineitems_url=link.lineitems_url
        ).reason
    link.save()
    LtiLaunchGrant.objects.update_or_create(
        lti_user=identity,
        resource_link=link,
        defaults={"user": user, "learner": not educator, "last_launch_at": timezone.now()},
    )
    # The launch may bring the scopes or the column a score was waiting for (lti/gradebook.py).
    gradebook.link_reconcile_after_launch(link=link)
    return LaunchResult(user=user, message=message, deployment=deployment, lesson=link.lesson, resource_link=link,
                        educator=educator, identity=identity, linked_by_email=linked_now)  # fmt: skip
