"""The LTI models left courses for their own app without moving a row: a database as it stood before
(courses at 0008, LTI rows in its courses_lti* tables, admin permissions on their content types) is
migrated forward, and the same rows are there, reachable through the lti models, permissions included."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import StateApps
from django.utils import timezone

from courses.models import Course, Lesson
from lti.models import LtiContext, LtiLaunchGrant, LtiPlatform, LtiResourceLink, LtiScore, LtiUser

BEFORE = [("courses", "0008_lesson_progress_credit_clock"), ("lti", None)]


def _executor() -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    return executor


@pytest.fixture
def before_the_move(transactional_db: None) -> Iterator[StateApps]:
    """The database migrated back to where it stood before lti was an app; forward again afterwards."""
    state = _executor().migrate(BEFORE)
    ContentType.objects.clear_cache()
    yield state.apps
    executor = _executor()
    executor.migrate(executor.loader.graph.leaf_nodes())
    ContentType.objects.clear_cache()


def test_migrating_forward_keeps_every_lti_row_and_permission(before_the_move: StateApps) -> None:
    old = before_the_move
    tables = connection.introspection.table_names()
    assert "courses_ltiplatform" in tables and not [t for t in tables if t.startswith("lti_")]
    user = old.get_model("auth", "User").objects.create(username="learner")
    course = old.get_model("courses", "Course").objects.create(slug="optics", title="Optics")
    lesson = old.get_model("courses", "Lesson").objects.create(course=course, title="Lenses")
    platform = old.get_model("courses", "LtiPlatform").objects.create(
        issuer="https://lms.example.edu",
        client_id="tool-1",
        auth_login_url="https://lms.example.edu/auth",
        auth_token_url="https://lms.example.edu/token",
        jwks_url="https://lms.example.edu/jwks",
    )
    deployment = old.get_model("courses", "LtiDeployment").objects.create(platform=platform, deployment_id="1")
    context = old.get_model("courses", "LtiContext").objects.create(
        deployment=deployment, context_id="c-1", course=course
    )
    link = old.get_model("courses", "LtiResourceLink").objects.create(
        deployment=deployment, resource_link_id="link-1", context=context, lesson=lesson
    )
    lti_user = old.get_model("courses", "LtiUser").objects.create(issuer=platform.issuer, sub="sub-1", user=user)
    old.get_model("courses", "LtiLaunchGrant").objects.create(
        user=user, lti_user=lti_user, resource_link=link, last_launch_at=timezone.now()
    )
    old.get_model("courses", "LtiScore").objects.create(
        resource_link=link, lti_user=lti_user, activity_progress="InProgress", grading_progress="Pending", version=3
    )
    # The admin permission a superuser gave an operator on the platforms, as it stood.
    content_types = old.get_model("contenttypes", "ContentType").objects
    platform_type = content_types.get(app_label="courses", model="ltiplatform")
    permission = old.get_model("auth", "Permission").objects.get(
        content_type=platform_type, codename="change_ltiplatform"
    )
    operator = old.get_model("auth", "User").objects.create(username="operator", is_staff=True)
    operator.user_permissions.add(permission)

    executor = _executor()
    executor.migrate(executor.loader.graph.leaf_nodes())
    ContentType.objects.clear_cache()

    moved = LtiPlatform.objects.get()
    assert (moved.pk, moved.issuer, moved.client_id) == (platform.pk, "https://lms.example.edu", "tool-1")
    assert LtiContext.objects.get().course == Course.objects.get(pk=course.pk)
    assert list(Lesson.objects.get(pk=lesson.pk).lti_links.values_list("pk", flat=True)) == [link.pk]
    assert LtiResourceLink.objects.get().deployment.platform == moved
    assert LtiUser.objects.get().user == User.objects.get(pk=user.pk)
    grant = LtiLaunchGrant.objects.select_related("resource_link__lesson").get()
    assert (grant.user_id, grant.resource_link.lesson.pk) == (user.pk, lesson.pk)
    score = LtiScore.objects.get()
    assert (score.lti_user_id, score.resource_link_id, score.version) == (lti_user.pk, link.pk, 3)
    # The content type changed app and kept its id, so the permission is still the operator's.
    assert ContentType.objects.get_for_model(LtiPlatform).pk == platform_type.pk
    assert not ContentType.objects.filter(app_label="courses", model__startswith="lti").exists()
    assert User.objects.get(username="operator").has_perm("lti.change_ltiplatform")
    assert Permission.objects.get(pk=permission.pk).content_type.app_label == "lti"


@pytest.mark.django_db
def test_the_models_match_their_migrations() -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)  # exits with 1 on a change
    assert out.getvalue().strip() == "No changes detected"
