"""Assignment and Grade Services: the watched share of a lesson, posted to each LMS gradebook that
linked it. Progress is posted as InProgress/Pending in 10 % steps, completion once as
Completed/FullyGraded with full marks. Each wanted score is a version; a version is posted once.
A link launched with only the line items service gets its column found or made first (lineitems.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.tasks import send_on_commit
from courses.models import Lesson
from lti import http, lineitems, messages, oauth
from lti.errors import LtiError, PlatformPermanentError, PlatformTransientError
from lti.models import ActivityProgress, GradingProgress, LtiLaunchGrant, LtiScore

SCORE_SCOPES = (messages.SCOPE_SCORE,)
# A claim older than this belongs to a worker that died mid-post (longer than the actor's time limit).
STALE_CLAIM = timedelta(minutes=5)


def wanted_score(*, share: float, completed: bool, score_maximum: float) -> tuple[float, str, str]:
    if completed:
        return score_maximum, ActivityProgress.COMPLETED, GradingProgress.FULLY_GRADED
    step = math.floor(min(1.0, share) * 10) / 10
    return round(step * score_maximum, 2), ActivityProgress.IN_PROGRESS, GradingProgress.PENDING


def scores_update(*, user: User, lesson: Lesson, share: float, completed: bool) -> list[int]:
    """Record the score this progress is worth in every line item the user launched this lesson from;
    enqueue a post (after commit) for each one that changed. Returns the ids of the changed scores."""
    changed = []
    grants = (
        LtiLaunchGrant.objects.filter(
            user=user, learner=True, resource_link__lesson=lesson, resource_link__deployment__platform__active=True
        )
        .exclude(resource_link__lineitem_url="", resource_link__lineitems_url="")
        .select_related("resource_link", "lti_user")
    )
    for grant in grants:
        link = grant.resource_link
        access = messages.gradebook_access(
            scopes=link.ags_scopes, lineitem_url=link.lineitem_url, lineitems_url=link.lineitems_url
        )
        if not access.mode:
            continue  # the reason is on the link (provisioning)
        score_given, activity, grading = wanted_score(
            share=share, completed=completed, score_maximum=link.score_maximum
        )
        with transaction.atomic():
            LtiScore.objects.get_or_create(
                resource_link=link,
                lti_user=grant.lti_user,
                defaults={
                    "activity_progress": ActivityProgress.INITIALIZED,
                    "grading_progress": GradingProgress.NOT_READY,
                },
            )
            score = LtiScore.objects.select_for_update().get(resource_link=link, lti_user=grant.lti_user)
            if score.activity_progress == ActivityProgress.COMPLETED:
                continue  # completion is final: never downgrade a gradebook entry
            if (score.score_given, score.activity_progress, score.grading_progress) == (score_given, activity, grading):
                continue
            score.score_given, score.activity_progress, score.grading_progress = score_given, activity, grading
            score.score_maximum = link.score_maximum
            score.scored_at = timezone.now()
            score.version += 1
            score.save()
            score_id = score.pk
            send_on_commit("ags_post_score", score_id)
            changed.append(score_id)
    return changed


@dataclass(frozen=True)
class Claim:
    version: int
    url: str
    payload: dict


def _claim(score_id: int) -> Claim | None:
    """Compare-and-set: take the newest unposted version for this worker, or None if there is nothing to do."""
    now = timezone.now()
    with transaction.atomic():
        score = (
            LtiScore.objects.select_for_update().select_related("resource_link", "lti_user").filter(pk=score_id).first()
        )
        if score is None or score.posted_version >= score.version or not score.resource_link.lineitem_url:
            return None
        if score.refused_version >= score.version:
            return None  # the platform refused this version: only a re-send (score_resend) tries it again
        if score.claimed_version >= score.version and score.claimed_at and score.claimed_at > now - STALE_CLAIM:
            return None  # another worker is posting this very version
        score.claimed_version, score.claimed_at = score.version, now
        fields = ["claimed_version", "claimed_at"]
        maximum = score.resource_link.score_maximum
        if maximum > 0 and score.score_maximum != maximum:
            # The column found on the platform has its own scoreMaximum (lineitems.py): the same share of it.
            share = score.score_given / score.score_maximum if score.score_maximum > 0 else 0.0
            score.score_given, score.score_maximum = round(share * maximum, 2), maximum
            fields += ["score_given", "score_maximum"]
        score.save(update_fields=fields)
        payload = messages.score_payload(
            user_id=score.lti_user.sub,
            score_given=score.score_given,
            score_maximum=score.score_maximum,
            activity_progress=score.activity_progress,
            grading_progress=score.grading_progress,
            timestamp=score.scored_at or now,
        )
        return Claim(version=score.version, url=messages.scores_url(score.resource_link.lineitem_url), payload=payload)


def ags_score_post(*, score_id: int) -> bool:
    """Post the score's newest version unless it was posted; True if this call posted it.

    A link without a line item gets it found or created first. Transient failures release the claim
    and raise PlatformTransientError (the actor retries); a refusal (4xx) is recorded and not retried.
    """
    pending = (
        LtiScore.objects.filter(pk=score_id)
        .values("resource_link_id", "version", "posted_version", "refused_version")
        .first()
    )
    if pending is None or max(pending["posted_version"], pending["refused_version"]) >= pending["version"]:
        return False
    try:
        lineitems.lineitem_resolve(link_id=pending["resource_link_id"])
    except (PlatformTransientError, PlatformPermanentError, LtiError) as exc:
        LtiScore.objects.filter(pk=score_id).update(attempts=F("attempts") + 1, last_error=str(exc)[:1000])
        raise
    claim = _claim(score_id)
    if claim is None:
        return False
    score = LtiScore.objects.select_related("resource_link__deployment__platform").get(pk=score_id)
    platform = score.resource_link.deployment.platform
    try:
        token = oauth.access_token(platform=platform, scopes=SCORE_SCOPES)
        try:
            http.post_json(
                claim.url,
                claim.payload,
                content_type=messages.SCORE_MEDIA_TYPE,
                headers={"Authorization": f"Bearer {token}"},
            )
        except PlatformPermanentError as exc:
            if " answered 401" in str(exc):  # token revoked early: forget it and try again with a new one
                oauth.access_token_forget(platform=platform, scopes=SCORE_SCOPES)
                raise PlatformTransientError(str(exc)) from exc
            raise
    except (PlatformTransientError, PlatformPermanentError) as exc:
        LtiScore.objects.filter(pk=score_id, claimed_version=claim.version).update(
            claimed_version=claim.version - 1, last_error=str(exc)[:1000]
        )
        if isinstance(exc, PlatformPermanentError):
            # Refused (4xx): this version waits for a change of score or a re-send, never a periodic retry.
            LtiScore.objects.filter(pk=score_id, refused_version__lt=claim.version).update(
                refused_version=claim.version
            )
        LtiScore.objects.filter(pk=score_id).update(attempts=F("attempts") + 1)
        raise
    LtiScore.objects.filter(pk=score_id, posted_version__lt=claim.version).update(
        posted_version=claim.version, posted_at=timezone.now(), last_error=""
    )
    return True
