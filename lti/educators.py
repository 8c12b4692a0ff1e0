"""Educator memberships that LTI gives and takes back, apart from the ones this site gives.

An LMS instructor of a context becomes an educator of its course (a launch, or the roster sync). When
the LMS later stops calling them an instructor (demoted to learner, or gone), the membership LTI gave
must go at their next launch, not at the next roster sync. But a course's educators also come from the
site itself (the admin, or a site educator who linked their LMS identity): LTI never takes those away.
An LtiEducatorGrant row tells the two apart: it is written only when LTI made the membership.

Memberships older than the grants (before migration 0005) have no row and are left alone: the safe side.
"""

from __future__ import annotations

from django.contrib.auth.models import User

from lti.models import LtiContext, LtiEducatorGrant


def educator_grant(*, context: LtiContext, user: User) -> bool:
    """Make `user` an educator of the context's course; True if LTI now holds (or holds again) that membership.

    An educator of the course through the site (no grant of any context of that course) stays one, and
    gets no grant: a later demotion in the LMS must not end what the site gave."""
    course = context.course
    assert course is not None
    if course.educators.filter(pk=user.pk).exists():
        if not LtiEducatorGrant.objects.filter(user=user, context__course_id=course.pk).exists():
            return False  # taught through the site
    else:
        course.educators.add(user)
    LtiEducatorGrant.objects.get_or_create(context=context, user=user)
    return True


def educator_revoke(*, context: LtiContext, user: User) -> bool:
    """Take back the educator membership this context's LTI gave; True if `user` stopped being an educator.

    One query when there is nothing to take back. The membership stays while another context linked to the
    same course still grants it."""
    if not LtiEducatorGrant.objects.filter(context=context, user=user).delete()[0]:
        return False
    course = context.course
    if course is None or LtiEducatorGrant.objects.filter(user=user, context__course_id=course.pk).exists():
        return False
    course.educators.remove(user)
    return True
