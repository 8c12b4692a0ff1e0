"""Names and Role Provisioning: bring an LMS course's roster into enrolments and educators."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from courses import services as course_services
from courses.models import Enrollment
from lti import claims, http, messages, oauth
from lti.educators import educator_grant, educator_revoke
from lti.errors import LtiError, PlatformPermanentError
from lti.models import LtiContext
from lti.provisioning import lti_user_provision

NRPS_SCOPES = (messages.SCOPE_NRPS,)
MAX_PAGES = 200


@dataclass(frozen=True)
class RosterSync:
    pages: int
    members: int
    learners: int
    educators: int
    removed: int


def roster_sync(*, context_id: int) -> RosterSync:
    """Fetch every page of the context's membership (following Link rel="next") and apply it."""
    context = LtiContext.objects.select_related("deployment__platform", "course").get(pk=context_id)
    if not context.memberships_url:
        raise LtiError("the platform gave no membership service for this course")
    if context.course is None:
        raise LtiError("this LMS course is not linked to a course yet (an instructor launch links it)")
    platform = context.deployment.platform
    token = oauth.access_token(platform=platform, scopes=NRPS_SCOPES)
    url: str | None = context.memberships_url
    pages = members = learners = educators = removed = 0
    seen: set[str] = set()
    while url and pages < MAX_PAGES:
        if url in seen:
            raise PlatformPermanentError("the platform's membership pages link in a circle")
        seen.add(url)
        reply = http.get_json(url, headers={"Accept": messages.NRPS_MEDIA_TYPE, "Authorization": f"Bearer {token}"})
        body = reply.json()
        page_members = body.get("members") if isinstance(body, dict) else None
        if not isinstance(page_members, list):
            raise PlatformPermanentError("the membership page has no members list")
        with transaction.atomic():
            for member in page_members:
                if not isinstance(member, dict) or not isinstance(member.get("user_id"), str):
                    continue
                members += 1
                roles = [role for role in member.get("roles", []) if isinstance(role, str)]
                status = member.get("status", "Active")
                _, user = lti_user_provision(issuer=platform.issuer, sub=member["user_id"], claims_=member)
                if status != "Active":
                    removed += Enrollment.objects.filter(user=user, course=context.course).delete()[0]
                    educator_revoke(context=context, user=user)  # never what the site gave (lti/educators.py)
                    continue
                if claims.is_educator(roles, teaching_assistants=platform.teaching_assistants_instruct):
                    educator_grant(context=context, user=user)
                    educators += 1
                else:
                    educator_revoke(context=context, user=user)
                if claims.is_learner(roles):
                    course_services.enrollment_create(user=user, course=context.course)
                    learners += 1
        pages += 1
        url = messages.next_page_url(reply.headers.get("link"))
    LtiContext.objects.filter(pk=context.pk).update(roster_synced_at=timezone.now())
    return RosterSync(pages=pages, members=members, learners=learners, educators=educators, removed=removed)
