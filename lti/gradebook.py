"""Scores still owed to LMS gradebooks, and sending them later.

A score is owed while its wanted version is ahead of the posted one. It stays owed when the post could
not happen: the platform granted only read access to its columns and had none for the link, or the
link had no column yet. Those are sent later, by `manage.py lti_grades_reconcile` (periodic) and after
every launch of the link (the launch may bring new scopes, or the instructor may have added a column):
the link's column is looked up once, then each owed score is posted through ags.ags_score_post, whose
compare-and-set claim makes a second reconciler running at the same time post nothing twice.

A score the platform refused (4xx) is not owed in that sense: it waits, with its reason, until the
score changes or someone re-sends it (score_resend: the instructor page, the admin). Retrying it on a
timer would only repeat the refusal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from core.tasks import send_on_commit
from lti import ags, lineitems
from lti.errors import LtiError, PlatformPermanentError, PlatformTransientError
from lti.models import LtiResourceLink, LtiScore

logger = logging.getLogger(__name__)


def scores_owed(*, link_id: int | None = None) -> QuerySet[LtiScore]:
    """Scores whose newest version is neither posted, nor refused, nor claimed by a live worker."""
    scores = LtiScore.objects.filter(
        version__gt=F("posted_version"),
        refused_version__lt=F("version"),
        resource_link__deployment__platform__active=True,
    ).filter(
        Q(claimed_version__lt=F("version"))
        | Q(claimed_at__isnull=True)
        | Q(claimed_at__lt=timezone.now() - ags.STALE_CLAIM)
    )
    if link_id is not None:
        scores = scores.filter(resource_link_id=link_id)
    return scores


def links_owed() -> list[int]:
    """Ids of the resource links with at least one owed score."""
    return sorted(set(scores_owed().values_list("resource_link_id", flat=True)))


@dataclass
class LinkReconciled:
    posted: int = 0
    skipped: int = 0  # posted by someone else meanwhile, or nothing left to do
    failed: list[str] = field(default_factory=list)
    blocked: str = ""  # why the link's column could not be found or made
    retry: bool = False  # a failure that trying later may mend (network, 5xx)


def link_reconcile(*, link_id: int) -> LinkReconciled:
    """Look for the link's column again (once), then post every score it owes. Safe to run twice at once."""
    result = LinkReconciled()
    score_ids = list(scores_owed(link_id=link_id).order_by("pk").values_list("pk", flat=True))
    if not score_ids:
        return result
    try:
        lineitems.lineitem_resolve(link_id=link_id)
    except (LtiError, PlatformPermanentError, PlatformTransientError) as exc:
        result.blocked, result.retry = str(exc)[:300], isinstance(exc, PlatformTransientError)
        return result
    for score_id in score_ids:
        try:
            if ags.ags_score_post(score_id=score_id):
                result.posted += 1
            else:
                result.skipped += 1
        except (LtiError, PlatformPermanentError, PlatformTransientError) as exc:
            result.failed.append(f"score {score_id}: {exc}")
            result.retry = result.retry or isinstance(exc, PlatformTransientError)
    return result


def link_reconcile_after_launch(*, link: LtiResourceLink) -> bool:
    """Queue a reconciliation of the link (after commit) when it owes scores; True if it was queued.

    Called by the launch: one indexed query when nothing is owed."""
    if not (link.lineitem_url or link.lineitems_url) or not scores_owed(link_id=link.pk).exists():
        return False
    send_on_commit("ags_reconcile_link", link.pk)
    return True


def score_resend(*, score_id: int) -> bool:
    """Send a refused (or failed) score again, once: clears the refusal and queues a post after commit.

    False when there is nothing to send (already posted, or unknown)."""
    reset = LtiScore.objects.filter(pk=score_id, version__gt=F("posted_version")).update(
        refused_version=0, last_error="", updated_at=timezone.now()
    )
    if not reset:
        return False
    logger.info("score %s re-sent by request", score_id)
    send_on_commit("ags_post_score", score_id)
    return True
