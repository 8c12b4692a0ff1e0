"""Scores still owed to a gradebook (lti/gradebook.py) against the real-HTTP platform emulator: sent later
when the platform grants write access or gets a column, scaled to a found column's own scoreMaximum,
refused ones kept with their reason until re-sent, and never posted twice by reconcilers running at once."""

from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from dramatiq import Worker

from courses.models import Lesson
from lti import ags, gradebook
from lti.errors import LtiError, PlatformPermanentError
from lti.models import LtiContext, LtiResourceLink, LtiScore
from media_pipeline.models import MediaAsset
from tests.lti.conftest import full_launch
from tests.lti.platform_emulator import SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_SCORE, PlatformEmulator
from tests.lti.test_ags import _learner_in_graded_link, _progress, _wait
from tests.lti.test_ags_lineitems import LINK_ID, _learner_in_link, _scores_path

pytestmark = pytest.mark.django_db(transaction=True)


def _reconcile() -> str:
    out = StringIO()
    call_command("lti_grades_reconcile", stdout=out, stderr=out)
    return out.getvalue()


def test_read_only_access_first_then_a_launch_with_write_access_sends_the_score_once(
    live_emulator: PlatformEmulator, dramatiq_worker: Worker
) -> None:
    emulator = live_emulator
    learner, lesson = _learner_in_link(emulator, scopes=[SCOPE_LINEITEM_READONLY, SCOPE_SCORE])
    assert _progress(learner, lesson, [[0, 6.0]]) == {"seconds_watched": 6, "completed": True}
    # The worker finds no column and may not make one: the score stays owed, with the reason.
    _wait(lambda: LtiScore.objects.filter(attempts=1).exists())
    score = LtiScore.objects.get()
    assert (score.version, score.posted_version, score.refused_version) == (1, 0, 0)
    assert "lineitem.readonly" in score.last_error
    link = LtiResourceLink.objects.get(resource_link_id=LINK_ID)
    assert "no gradebook column" in link.grades_blocked_reason
    assert [s.pk for s in gradebook.scores_owed()] == [score.pk]

    # The platform now grants write access; the learner's next launch of the link sends what is owed.
    emulator.launches["graded"]["ags_scopes"] = [SCOPE_LINEITEM, SCOPE_SCORE]
    assert full_launch(learner, emulator, user="learner-1", launch="graded").status_code == 302
    _wait(lambda: len(emulator.recorded.scores) == 1)
    _wait(lambda: LtiScore.objects.filter(posted_version=1).exists())

    (post,) = emulator.lineitem_posts()
    created = emulator.lineitems[0]["id"]
    (sent,) = emulator.recorded.scores
    assert (sent["path"], sent["scoreGiven"], sent["activityProgress"]) == (_scores_path(created), 100, "Completed")
    link.refresh_from_db()
    assert (link.lineitem_url, link.grades_blocked_reason) == (created, "")
    # Nothing is owed any more: another launch and the periodic run send nothing.
    assert _reconcile() == "nothing owed\n"
    assert full_launch(learner, emulator, user="learner-1", launch="graded").status_code == 302
    assert gradebook.link_reconcile(link_id=link.pk).posted == 0
    assert len(emulator.recorded.scores) == 1
    assert len(emulator.lineitem_posts()) == 1


def test_no_column_then_a_column_with_its_own_maximum_gets_the_scaled_score_once(
    live_emulator: PlatformEmulator,
) -> None:
    emulator = live_emulator
    learner, lesson = _learner_in_link(emulator, scopes=[SCOPE_LINEITEM_READONLY, SCOPE_SCORE])
    _progress(learner, lesson, [[0, 2.0]])  # 2 of 6 s: 30 % of the link's default 100
    score = LtiScore.objects.get()
    with pytest.raises(LtiError, match="lineitem.readonly"):
        ags.ags_score_post(score_id=score.pk)
    link = LtiResourceLink.objects.get(resource_link_id=LINK_ID)
    assert _reconcile() == (
        f"link {link.pk}: 0 posted, 0 skipped, 0 failed (column: the platform has no gradebook column for this "
        "link and grants only read access to its columns (lineitem.readonly): no grades are sent until an "
        "instructor adds one)\n"
    )
    assert emulator.recorded.scores == []

    # The instructor adds the column in the LMS, out of 10 points.
    column = emulator.add_lineitem(resource_link_id=LINK_ID, label="Lenses", score_maximum=10)
    assert _reconcile() == f"link {link.pk}: 1 posted, 0 skipped, 0 failed\n"
    assert _reconcile() == "nothing owed\n"

    (sent,) = emulator.recorded.scores
    assert (sent["path"], sent["scoreGiven"], sent["scoreMaximum"]) == (_scores_path(column), 3.0, 10)
    assert (sent["activityProgress"], sent["gradingProgress"]) == ("InProgress", "Pending")
    link.refresh_from_db()
    assert (link.lineitem_url, link.score_maximum) == (column, 10)
    score.refresh_from_db()
    assert (score.score_given, score.score_maximum, score.posted_version) == (3.0, 10, 1)

    # Completion on that column: full marks are its 10 points.
    _progress(learner, lesson, [[0, 6.0]])
    assert ags.ags_score_post(score_id=score.pk) is True
    assert [(s["scoreGiven"], s["scoreMaximum"]) for s in emulator.recorded.scores] == [(3.0, 10), (10, 10)]
    assert emulator.lineitem_posts() == []


def test_a_refused_score_shows_its_reason_and_is_sent_again_after_the_fix(live_emulator: PlatformEmulator) -> None:
    emulator = live_emulator
    learner, lesson = _learner_in_graded_link(emulator)
    teacher = Client()
    teacher.force_login(LtiContext.objects.get().course.educators.get())
    page_url = f"/lti/instructor/{LtiContext.objects.get().public_id}/"
    emulator.refuse_scores = 1

    _progress(learner, lesson, [[0, 6.0]])
    score = LtiScore.objects.get()
    with pytest.raises(PlatformPermanentError, match="answered 400"):
        ags.ags_score_post(score_id=score.pk)
    score.refresh_from_db()
    reason = f"POST {emulator.base}/lineitems/li-7/scores answered 400"
    assert (score.version, score.posted_version, score.refused_version, score.last_error) == (1, 0, 1, reason)

    # No retry storm: neither the periodic run, nor the link's next launch, nor a redelivered message posts it.
    assert _reconcile() == "nothing owed\n"
    assert full_launch(learner, emulator, user="learner-1", launch="graded").status_code == 302
    assert ags.ags_score_post(score_id=score.pk) is False
    assert emulator.recorded.scores == []

    page = teacher.get(page_url).content.decode()
    assert reason in page and "refused" in page
    # The platform is fixed; the instructor sends it again from the page.
    response = teacher.post(f"{page_url}scores/{score.pk}/resend/")
    assert (response.status_code, response["Location"]) == (302, page_url)
    score.refresh_from_db()
    assert (score.refused_version, score.last_error) == (0, "")
    assert _reconcile() == f"link {score.resource_link_id}: 1 posted, 0 skipped, 0 failed\n"
    (sent,) = emulator.recorded.scores
    assert (sent["userId"], sent["scoreGiven"], sent["activityProgress"]) == ("learner-sub-1", 100, "Completed")
    assert "100 / 100, sent" in teacher.get(page_url).content.decode()
    # Once it is there, a re-send is a no-op.
    assert teacher.post(f"{page_url}scores/{score.pk}/resend/").status_code == 302
    assert _reconcile() == "nothing owed\n"
    assert len(emulator.recorded.scores) == 1


def test_the_admin_action_re_sends_a_refused_score(live_emulator: PlatformEmulator) -> None:
    emulator = live_emulator
    learner, lesson = _learner_in_graded_link(emulator)
    emulator.refuse_scores = 1
    _progress(learner, lesson, [[0, 6.0]])
    score = LtiScore.objects.get()
    with pytest.raises(PlatformPermanentError):
        ags.ags_score_post(score_id=score.pk)
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", password=None))
    changelist = "/admin/lti/ltiscore/"
    assert "answered 400" in admin.get(changelist).content.decode()

    response = admin.post(changelist, {"action": "resend", "_selected_action": [str(score.pk)]})
    assert response.status_code == 302
    assert ags.ags_score_post(score_id=score.pk) is True
    assert len(emulator.recorded.scores) == 1


def test_reconcilers_at_once_or_beside_a_live_claim_post_each_version_once(live_emulator: PlatformEmulator) -> None:
    emulator = live_emulator
    learner, lesson = _learner_in_link(emulator, scopes=[SCOPE_LINEITEM, SCOPE_SCORE])
    _progress(learner, lesson, [[0, 6.0]])
    score = LtiScore.objects.get()
    link = LtiResourceLink.objects.get(resource_link_id=LINK_ID)

    # A worker claimed this version a moment ago and is posting it: the reconciliation leaves it alone.
    LtiScore.objects.filter(pk=score.pk).update(claimed_version=1, claimed_at=timezone.now())
    assert _reconcile() == "nothing owed\n"
    assert emulator.recorded.scores == [] and emulator.lineitem_posts() == []
    # That worker died: after STALE_CLAIM the score is owed again.
    LtiScore.objects.filter(pk=score.pk).update(claimed_at=timezone.now() - ags.STALE_CLAIM - timedelta(seconds=1))

    barrier = threading.Barrier(2)
    results: list[gradebook.LinkReconciled] = []
    errors: list[BaseException] = []

    def reconciler() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(gradebook.link_reconcile(link_id=link.pk))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=reconciler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sorted(result.posted for result in results) == [0, 1]
    assert len(emulator.recorded.scores) == 1
    assert len(emulator.lineitem_posts()) == 1
    score.refresh_from_db()
    assert (score.version, score.posted_version) == (1, 1)
    assert _reconcile() == "nothing owed\n"


def _learner_in_claim_named_column(emulator: PlatformEmulator, *, lineitem: str) -> tuple[Client, Lesson]:
    assert full_launch(Client(), emulator, user="teacher-1", launch="first").status_code == 200
    course = LtiContext.objects.get().course
    asset = MediaAsset.objects.create(
        key_prefix="lessons/claim", status="ready", published_version=1, building_version=1, duration_seconds=6.0
    )
    lesson = Lesson.objects.create(course=course, title="Optics", asset=asset)
    emulator.launches["claimed"] = {
        "custom": {"lesson": str(lesson.public_id)},
        "resource_link": {"id": "claimed-1", "title": "Optics"},
        "lineitem": lineitem,
    }
    learner = Client()
    assert full_launch(learner, emulator, user="learner-1", launch="claimed").status_code == 302
    return learner, lesson


def test_a_column_the_launch_names_is_read_once_for_its_own_maximum(
    live_emulator: PlatformEmulator, dramatiq_worker: Worker
) -> None:
    emulator = live_emulator
    column = emulator.add_lineitem(resource_link_id="claimed-1", label="Optics", score_maximum=10)
    learner, lesson = _learner_in_claim_named_column(emulator, lineitem=column)

    assert _progress(learner, lesson, [[0, 3.0]]) == {"seconds_watched": 3, "completed": False}
    _wait(lambda: len(emulator.recorded.scores) == 1)
    assert _progress(learner, lesson, [[0, 6.0]]) == {"seconds_watched": 6, "completed": True}
    _wait(lambda: len(emulator.recorded.scores) == 2)

    first, done = emulator.recorded.scores
    assert (first["path"], first["scoreGiven"], first["scoreMaximum"]) == (_scores_path(column), 5.0, 10)
    assert (done["scoreGiven"], done["scoreMaximum"], done["activityProgress"]) == (10, 10, "Completed")
    # Read once (two scores were posted), with the line item media type; nothing was listed or made.
    assert emulator.recorded.lineitem_reads == [
        {"path": column.removeprefix(emulator.base), "accept": "application/vnd.ims.lis.v2.lineitem+json"}
    ]
    assert emulator.recorded.lineitem_requests == []
    link = LtiResourceLink.objects.get(resource_link_id="claimed-1")
    assert (link.score_maximum, link.score_maximum_read_from, link.lineitem_url) == (10.0, column, column)
    _wait(lambda: LtiScore.objects.filter(posted_version=2).exists())
    assert LtiScore.objects.values_list("score_given", "score_maximum").get() == (10.0, 10.0)


def test_a_named_column_that_cannot_be_read_keeps_the_links_maximum_with_a_logged_reason(
    live_emulator: PlatformEmulator, dramatiq_worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = live_emulator
    missing = emulator.lineitem_url("not-there")  # the platform answers 404 for it
    learner, lesson = _learner_in_claim_named_column(emulator, lineitem=missing)

    with caplog.at_level("WARNING", logger="lti.lineitems"):
        assert _progress(learner, lesson, [[0, 6.0]]) == {"seconds_watched": 6, "completed": True}
        _wait(lambda: len(emulator.recorded.scores) == 1)
    (sent,) = emulator.recorded.scores
    assert (sent["path"], sent["scoreGiven"], sent["scoreMaximum"]) == (_scores_path(missing), 100, 100)
    assert len(emulator.recorded.lineitem_reads) == 1
    link = LtiResourceLink.objects.get(resource_link_id="claimed-1")
    assert (link.score_maximum, link.score_maximum_read_from) == (100.0, missing)
    (record,) = [r for r in caplog.records if r.name == "lti.lineitems"]
    assert "could not be read, scores keep 100.0" in record.getMessage()
    assert "404" in record.getMessage()
