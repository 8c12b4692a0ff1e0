"""Instructor rights that the LMS takes back (lti/educators.py): a launch whose roles no longer make the user
an instructor of the context ends the educator membership LTI gave for that course at once, and never one
the site gave (an account linked to a site educator, or someone added in the admin). Through the Django test
client against the platform emulator."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from courses.models import Course, Enrollment
from lti.models import LtiContext, LtiEducatorGrant, LtiUser
from lti.nrps import roster_sync
from tests.lti.conftest import full_launch, register
from tests.lti.platform_emulator import ROLE_INSTRUCTOR, ROLE_LEARNER, PlatformEmulator, new_member

pytestmark = pytest.mark.django_db


def _launch(emulator: PlatformEmulator, name: str, *, roles: list[str], client: Client | None = None) -> Client:
    emulator.users[name] = {"sub": f"{name}-sub", "roles": roles, "name": name.title()}
    client = client or Client()
    # An instructor's plain launch answers 200 (a page with the link to the instructor page), a learner's 200 too.
    assert full_launch(client, emulator, user=name, launch="first").status_code == 200
    return client


def _page(client: Client, context: LtiContext) -> int:
    return client.get(f"/lti/instructor/{context.public_id}/").status_code


def _educators(course: Course) -> list[str]:
    return sorted(course.educators.values_list("username", flat=True))


@pytest.fixture
def context(emulator: PlatformEmulator) -> LtiContext:
    register(emulator)
    _launch(emulator, "teacher-1", roles=[ROLE_INSTRUCTOR])  # makes the course, with teacher-1 by LTI
    return LtiContext.objects.select_related("course").get()


def test_an_instructor_demoted_in_the_lms_loses_the_instructor_page_at_their_next_launch(
    emulator: PlatformEmulator, context: LtiContext
) -> None:
    course = context.course
    assert course is not None
    ta = _launch(emulator, "teacher-2", roles=[ROLE_INSTRUCTOR])
    teacher_2 = LtiUser.objects.get(sub="teacher-2-sub").user
    assert _page(ta, context) == 200
    assert set(LtiEducatorGrant.objects.values_list("user__lti_identities__sub", flat=True)) == {
        "teacher-1-sub",
        "teacher-2-sub",
    }

    _launch(emulator, "teacher-2", roles=[ROLE_LEARNER], client=ta)

    assert _page(ta, context) == 403
    assert not course.educators.filter(pk=teacher_2.pk).exists()
    assert list(LtiEducatorGrant.objects.values_list("user__lti_identities__sub", flat=True)) == ["teacher-1-sub"]
    assert Enrollment.objects.filter(user=teacher_2, course=course).exists()  # now one of its learners
    # Promoted again: the page is back.
    _launch(emulator, "teacher-2", roles=[ROLE_INSTRUCTOR], client=ta)
    assert _page(ta, context) == 200


def test_a_linked_site_educator_of_the_course_keeps_it_after_a_learner_launch(
    emulator: PlatformEmulator, context: LtiContext
) -> None:
    course = context.course
    assert course is not None
    educator = User.objects.create_user("site-educator", password="x")
    course.educators.add(educator)  # taught through the site before the LMS identity was linked
    LtiUser.objects.create(issuer=emulator.issuer, sub="teacher-3-sub", user=educator, link_method="password")

    client = _launch(emulator, "teacher-3", roles=[ROLE_INSTRUCTOR])
    assert not LtiEducatorGrant.objects.filter(user=educator).exists()  # LTI gave nothing here
    _launch(emulator, "teacher-3", roles=[ROLE_LEARNER], client=client)

    assert course.educators.filter(pk=educator.pk).exists()
    assert _page(client, context) == 200
    assert _educators(course) == sorted(["site-educator", LtiUser.objects.get(sub="teacher-1-sub").user.username])


def test_someone_made_an_educator_in_the_admin_keeps_it_after_a_learner_launch(
    emulator: PlatformEmulator, context: LtiContext
) -> None:
    course = context.course
    assert course is not None
    client = _launch(emulator, "learner-9", roles=[ROLE_LEARNER])
    learner = LtiUser.objects.get(sub="learner-9-sub").user
    course.educators.add(learner)  # as the admin's course form does

    _launch(emulator, "learner-9", roles=[ROLE_LEARNER], client=client)

    assert course.educators.filter(pk=learner.pk).exists()
    assert _page(client, context) == 200
    assert not LtiEducatorGrant.objects.filter(user=learner).exists()


@pytest.mark.django_db(transaction=True)
def test_the_roster_takes_back_what_lti_gave_and_leaves_the_sites_educators(live_emulator: PlatformEmulator) -> None:
    emulator = live_emulator  # registered already
    _launch(emulator, "teacher-1", roles=[ROLE_INSTRUCTOR])
    context = LtiContext.objects.select_related("course").get()
    course = context.course
    assert course is not None
    _launch(emulator, "teacher-2", roles=[ROLE_INSTRUCTOR])
    educator = User.objects.create_user("site-educator", password="x")
    course.educators.add(educator)
    LtiUser.objects.create(issuer=emulator.issuer, sub="teacher-3-sub", user=educator, link_method="password")
    emulator.members = [
        new_member("teacher-1-sub", roles=[ROLE_INSTRUCTOR], name="Teacher One"),
        new_member("teacher-2-sub", roles=[ROLE_LEARNER], name="Teacher Two"),  # demoted
        new_member("teacher-3-sub", roles=[ROLE_INSTRUCTOR], name="Site Educator", status="Inactive"),
    ]

    assert roster_sync(context_id=context.pk).educators == 1

    teacher_1 = LtiUser.objects.get(sub="teacher-1-sub").user
    assert set(course.educators.all()) == {teacher_1, educator}
    assert list(LtiEducatorGrant.objects.values_list("user", flat=True)) == [teacher_1.pk]


def test_the_admin_lists_the_grants_to_superusers_only(emulator: PlatformEmulator, context: LtiContext) -> None:
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", password="x"))
    response = admin.get("/admin/lti/ltieducatorgrant/")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    staff = Client()
    staff.force_login(User.objects.create_user("staff", password="x", is_staff=True))
    assert staff.get("/admin/lti/ltieducatorgrant/").status_code == 403
