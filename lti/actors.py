"""LTI background work: re-fetch by id, call one service; network and 5xx failures retry with backoff."""

from __future__ import annotations

import dramatiq

from core.tasks import ActorOptions
from lti import ags, gradebook, nrps
from lti.errors import LtiError, PlatformPermanentError, PlatformTransientError

COMMON: ActorOptions = {"queue_name": "lti", "max_retries": 8, "min_backoff": 1_000, "max_backoff": 10 * 60_000,
          "time_limit": 2 * 60_000, "throws": (PlatformPermanentError, LtiError)}  # fmt: skip


@dramatiq.actor(**COMMON)
def ags_post_score(score_id: int) -> None:
    ags.ags_score_post(score_id=score_id)


@dramatiq.actor(**COMMON)
def nrps_sync_context(context_id: int) -> None:
    nrps.roster_sync(context_id=context_id)


@dramatiq.actor(**COMMON)
def ags_reconcile_link(link_id: int) -> None:
    """Scores a link still owes: after a launch of it, and from `manage.py lti_grades_reconcile --queue`."""
    result = gradebook.link_reconcile(link_id=link_id)
    if result.retry:
        # Only transient failures retry (refusals wait for a re-send); each reason is kept on its score.
        raise PlatformTransientError((result.blocked or "; ".join(result.failed))[:1000])
