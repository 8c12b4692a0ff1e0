"""What lti shows of account linking on other pages: the account page's section (registered on
courses.hooks) and the notice or offer on the pages an LMS launch shows (templatetags/lti_linking.py)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest
from django.template.loader import render_to_string

from courses import selectors as course_selectors
from courses.models import Course
from lti import linking

SESSION_IDENTITY = "lti_identity"  # the identity of this session's launch (lti.views.launch_view)
SESSION_LINKED_BY_EMAIL = "lti_linked_by_email"  # that launch linked it by email: say so once


def account_section(*, request: HttpRequest) -> str:
    """The LMS identities linked to the account, each with an Unlink button (courses' account page)."""
    user = request.user
    if not isinstance(user, User):
        return ""
    identities = linking.identities_linked_to(user=user)
    return render_to_string("lti/account_section.html", {"identities": identities}, request=request)


def launch_account_context(*, request: HttpRequest, course: Course | None = None) -> dict[str, Any]:
    """For a page shown after a launch: a link offer (a placeholder account; on a lesson page only for
    its course's educators), or which account this LMS user is linked to (never linked silently)."""
    user = request.user
    if not isinstance(user, User):
        return {}
    if course is None or course_selectors.user_teaches(user=user, course=course):
        offer = linking.link_offer_url(user=user)
        if offer is not None:
            return {"link_url": offer}
    linked = linking.identities_linked_to(user=user)
    if not linked:
        return {}
    current = request.session.get(SESSION_IDENTITY)
    identity, platform_name = next(((i, name) for i, name in linked if i.pk == current), linked[0])
    return {
        "linked": identity,
        "linked_platform": platform_name,
        "linked_by_email_now": request.session.pop(SESSION_LINKED_BY_EMAIL, None) == identity.pk,
    }
