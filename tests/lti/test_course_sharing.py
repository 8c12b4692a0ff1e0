"""Sharing a course with an LMS: `manage.py lti_share_course` for operators, and the admin for operators
(any course) and educators (only the courses they teach). Every refusal changes nothing."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from courses.models import Course
from lti.errors import LtiRefused
from lti.models import LtiCourseShare, LtiPlatform
from lti.sharing import course_share, course_unshare

pytestmark = pytest.mark.django_db

ADD = "/admin/lti/lticourseshare/add/"
LIST = "/admin/lti/lticourseshare/"


def _platform(issuer: str = "https://moodle.example.edu", client_id: str = "client-1", **fields: object) -> LtiPlatform:
    return LtiPlatform.objects.create(
        issuer=issuer,
        client_id=client_id,
        auth_login_url=f"{issuer}/auth",
        auth_token_url=f"{issuer}/token",
        jwks_url=f"{issuer}/jwks",
        **fields,
    )


def _shares() -> list[tuple[str, str, str | None]]:
    rows = LtiCourseShare.objects.order_by("course__slug", "platform__client_id")
    return [(s.course.slug, s.platform.client_id, s.shared_by.username if s.shared_by else None) for s in rows]


def _run(*args: str) -> str:
    out = StringIO()
    call_command("lti_share_course", *args, stdout=out)
    return out.getvalue().strip()


def test_the_command_shares_and_unshares_and_running_it_twice_changes_nothing() -> None:
    Course.objects.create(slug="optics", title="Optics")
    _platform()
    iss = "https://moodle.example.edu"
    assert _run("optics", "--issuer", iss) == f"course optics shared with {iss} (client client-1)"
    assert _run("optics", "--issuer", iss) == f"course optics already shared with {iss} (client client-1)"
    assert _shares() == [("optics", "client-1", None)]
    assert (
        _run("optics", "--issuer", iss, "--unshare") == f"course optics no longer shared with {iss} (client client-1)"
    )
    assert _run("optics", "--issuer", iss, "--unshare") == f"course optics was not shared with {iss} (client client-1)"
    assert _shares() == []


def test_the_command_refuses_unknown_courses_and_lms_and_an_ambiguous_issuer() -> None:
    Course.objects.create(slug="optics", title="Optics")
    iss = "https://moodle.example.edu"
    _platform(iss, "client-1")
    _platform(iss, "client-2")
    _platform("https://canvas.example.edu", "client-3")
    cases = [
        (("nope", "--issuer", iss, "--client-id", "client-1"), "no course has the slug 'nope'"),
        (
            ("optics", "--issuer", "https://unknown.example"),
            "no LMS is registered with issuer 'https://unknown.example'",
        ),
        (
            ("optics", "--issuer", iss, "--client-id", "client-3"),
            f"no LMS is registered with issuer '{iss}' and client id 'client-3'",
        ),
        (
            ("optics", "--issuer", iss),
            f"several LMS registrations have issuer '{iss}'; choose one with --client-id (client-1, client-2)",
        ),
        (("optics", "--issuer", iss, "--unshare"), "several LMS registrations have issuer"),
    ]
    for args, message in cases:
        with pytest.raises(CommandError) as refused:  # manage.py exits with status 1 on CommandError
            _run(*args)
        assert str(refused.value).startswith(message), args
        assert _shares() == []
    assert _run("optics", "--issuer", iss, "--client-id", "client-2").startswith("course optics shared with")
    assert _shares() == [("optics", "client-2", None)]


def test_the_sharing_service_lets_educators_share_only_what_they_teach() -> None:
    teacher = User.objects.create_user("teacher", is_staff=True)
    not_staff = User.objects.create_user("lms-teacher")
    mine, theirs = (
        Course.objects.create(slug="mine", title="Mine"),
        Course.objects.create(slug="theirs", title="Theirs"),
    )
    mine.educators.add(teacher, not_staff)
    platform = _platform()
    share, created = course_share(course=mine, platform=platform, by=teacher)
    assert created and share.shared_by == teacher
    for user, course in ((teacher, theirs), (not_staff, mine)):
        with pytest.raises(LtiRefused):
            course_share(course=course, platform=platform, by=user)
        with pytest.raises(LtiRefused):
            course_unshare(course=course, platform=platform, by=user)
    assert _shares() == [("mine", "client-1", "teacher")]


def test_an_operator_shares_any_course_in_the_admin_and_unshares_it() -> None:
    operator = User.objects.create_superuser("operator", password="x")
    course = Course.objects.create(slug="optics", title="Optics")
    platform = _platform(name="Moodle of Example High")
    admin = Client()
    admin.force_login(operator)
    added = admin.post(ADD, {"course": course.pk, "platform": platform.pk})
    assert added.status_code == 302 and added["Location"] == LIST
    assert _shares() == [("optics", "client-1", "operator")]
    again = admin.post(ADD, {"course": course.pk, "platform": platform.pk})
    assert again.status_code == 200 and "already exists" in again.text
    assert _shares() == [("optics", "client-1", "operator")]
    listing = admin.get(LIST)
    assert "Moodle of Example High" in listing.text and "Optics" in listing.text
    share = LtiCourseShare.objects.get()
    assert admin.get(f"{LIST}{share.pk}/change/").status_code == 200  # viewable, but nothing to change
    assert admin.post(f"{LIST}{share.pk}/delete/", {"post": "yes"}).status_code == 302
    assert _shares() == []


def test_an_educator_shares_only_the_courses_they_teach_in_the_admin() -> None:
    teacher = User.objects.create_user("teacher", password="x", is_staff=True)
    other = User.objects.create_user("other", password="x", is_staff=True)
    mine, theirs = (
        Course.objects.create(slug="mine", title="Mine"),
        Course.objects.create(slug="theirs", title="Theirs"),
    )
    mine.educators.add(teacher)
    theirs.educators.add(other)
    platform = _platform(name="Moodle")
    _platform("https://old.example.edu", "client-9", name="Switched off", active=False)
    their_share, _ = course_share(course=theirs, platform=platform, by=other)
    admin = Client()
    admin.force_login(teacher)

    form = admin.get(ADD)
    assert form.status_code == 200
    assert ">Mine</option>" in form.text and ">Theirs</option>" not in form.text
    assert ">Moodle</option>" in form.text and "Switched off" not in form.text
    refused = admin.post(ADD, {"course": theirs.pk, "platform": platform.pk})
    assert refused.status_code == 200 and "Select a valid choice" in refused.text
    assert _shares() == [("theirs", "client-1", "other")]

    assert admin.post(ADD, {"course": mine.pk, "platform": platform.pk}).status_code == 302
    assert _shares() == [("mine", "client-1", "teacher"), ("theirs", "client-1", "other")]
    listing = admin.get(LIST)
    assert ">Mine<" in listing.text and "Theirs" not in listing.text
    # Someone else's share cannot be opened or deleted (the admin answers as if it did not exist).
    assert admin.get(f"{LIST}{their_share.pk}/change/").status_code == 302  # to the admin index
    assert admin.post(f"{LIST}{their_share.pk}/change/", {"course": mine.pk}).status_code == 403
    assert admin.post(f"{LIST}{their_share.pk}/delete/", {"post": "yes"}).status_code == 302
    bulk = admin.post(LIST, {"action": "delete_selected", "_selected_action": [their_share.pk], "post": "yes"})
    assert bulk.status_code == 302
    assert _shares() == [("mine", "client-1", "teacher"), ("theirs", "client-1", "other")]
    own = LtiCourseShare.objects.get(course=mine)
    assert admin.post(f"{LIST}{own.pk}/delete/", {"post": "yes"}).status_code == 302
    assert _shares() == [("theirs", "client-1", "other")]

    # Staff who teach nothing see no course to share; LMS instructors (not staff) are not let in.
    nobody = Client()
    nobody.force_login(User.objects.create_user("new", is_staff=True))
    choices = re.search(r'<select name="course"[^>]*>(.*?)</select>', nobody.get(ADD).text, re.S)
    assert choices is not None and re.findall(r"<option[^>]*>([^<]*)</option>", choices.group(1)) == ["---------"]
    lms = Client()
    lms.force_login(User.objects.create_user("lms-teacher"))
    assert (
        lms.get(ADD).status_code == 302
        and lms.post(ADD, {"course": mine.pk, "platform": platform.pk}).status_code == 302
    )
    assert _shares() == [("theirs", "client-1", "other")]
