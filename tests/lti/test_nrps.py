"""Names and Role Provisioning: a context's roster, in two pages, into enrolments and educators."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client
from dramatiq import Worker

from courses.models import Enrollment
from lti.actors import nrps_sync_context
from lti.models import LtiContext, LtiPlatform, LtiUser
from tests.lti.conftest import full_launch
from tests.lti.platform_emulator import ROLE_INSTRUCTOR, ROLE_LEARNER, ROLE_TA, PlatformEmulator, new_member

pytestmark = pytest.mark.django_db(transaction=True)


def _roster(emulator: PlatformEmulator) -> None:
    emulator.members = [
        new_member("teacher-sub-1", roles=[ROLE_INSTRUCTOR], name="Grace Hopper"),
        new_member("learner-sub-1", roles=[ROLE_LEARNER], name="Ada Lovelace", email="ada@lms.example"),
        new_member("learner-sub-3", roles=[ROLE_LEARNER], name="Katherine Johnson", email="kj@lms.example"),
        new_member("ta-sub-1", roles=[ROLE_TA], name="Dorothy Vaughan"),
        new_member("learner-sub-4", roles=[ROLE_LEARNER], name="Left Early", status="Inactive"),
    ]


def test_roster_sync_follows_every_page(live_emulator: PlatformEmulator) -> None:
    emulator = live_emulator
    _roster(emulator)
    LtiPlatform.objects.update(teaching_assistants_instruct=True)  # so the roster's TA is an educator too
    assert full_launch(Client(), emulator, user="teacher-1", launch="first").status_code == 200
    context = LtiContext.objects.get()
    assert context.memberships_url == emulator.memberships_url
    # Someone who left had been enrolled by an earlier launch.
    emulator.users["learner-4"] = {"sub": "learner-sub-4", "roles": [ROLE_LEARNER]}
    assert full_launch(Client(), emulator, user="learner-4", launch="first").status_code == 200
    assert Enrollment.objects.filter(user__lti_identities__sub="learner-sub-4").count() == 1

    out = io.StringIO()
    call_command("lti_sync_roster", stdout=out)
    assert out.getvalue().strip() == f"context {context.pk}: 5 members on 2 pages, 2 learners, 2 educators, 1 removed"
    course = context.course
    enrolled = sorted(Enrollment.objects.filter(course=course).values_list("user__lti_identities__sub", flat=True))
    assert enrolled == ["learner-sub-1", "learner-sub-3"]
    educators = sorted(course.educators.values_list("lti_identities__sub", flat=True))
    assert educators == ["ta-sub-1", "teacher-sub-1"]
    katherine = LtiUser.objects.get(sub="learner-sub-3").user
    assert (katherine.first_name, katherine.last_name, katherine.email) == ("Katherine", "Johnson", "kj@lms.example")
    context.refresh_from_db()
    assert context.roster_synced_at is not None
    # The same user as a later launch: issuer + sub is stable.
    assert full_launch(Client(), emulator, user="learner-1", launch="first").status_code == 200
    assert LtiUser.objects.filter(sub="learner-sub-1").count() == 1
    # Running again changes nothing.
    call_command("lti_sync_roster", stdout=io.StringIO())
    assert Enrollment.objects.filter(course=course).count() == 2
    (token_request,) = emulator.recorded.token_requests  # cached token reused
    assert token_request["scope"] == "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


def test_roster_sync_runs_as_an_actor(live_emulator: PlatformEmulator, dramatiq_worker: Worker) -> None:
    emulator = live_emulator
    _roster(emulator)
    assert full_launch(Client(), emulator, user="teacher-1", launch="first").status_code == 200
    context = LtiContext.objects.get()
    nrps_sync_context.send(context.pk)
    dramatiq_worker.broker.join(nrps_sync_context.queue_name, timeout=30_000)
    dramatiq_worker.join()
    assert Enrollment.objects.filter(course=context.course).count() == 2
    context.refresh_from_db()
    assert context.roster_synced_at is not None
