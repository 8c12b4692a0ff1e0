"""The asset state machine: which state may follow which, and the four moves every step makes.

A step claims the asset (compare-and-set into its running state), does its work, then either advances
it (compare-and-set to the next state, the next step sent after commit) or fails it (a permanent,
user-visible failure). Every move is one conditional UPDATE whose row count is checked, so a worker
that lost a race, or whose version a newer upload replaced, changes nothing. Steps are sent by actor
name (core.tasks), so this module never imports the actors that call the steps. See docs/adr/0002.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core import tasks
from media_pipeline.metrics import ASSET_FAILURES
from media_pipeline.models import AssetStatus, MediaAsset

logger = logging.getLogger(__name__)

S = AssetStatus

# Every move between states. A new upload (``restart``) is the one move allowed from every state: it
# starts the next version over at UPLOADED, whatever the previous one was doing.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.UPLOADED: frozenset({S.PROBING}),
    S.PROBING: frozenset({S.PROBING, S.PROVISIONAL, S.PROBED, S.FAILED}),
    S.PROVISIONAL: frozenset({S.PROVISIONAL, S.PROBED}),
    S.PROBED: frozenset({S.TRANSCODING}),
    S.TRANSCODING: frozenset({S.TRANSCODING, S.TRANSCODED, S.FAILED}),
    # To PROBED: a version packaged in the clear for an asset made protected meanwhile is built again.
    S.TRANSCODED: frozenset({S.READY, S.FAILED, S.PROBED}),
    # To PROBED: the next version built from the stored original (protection or text tracks changed);
    # to FAILED: a clear version withdrawn when the asset is made protected and cannot be rebuilt.
    S.READY: frozenset({S.PROBED, S.FAILED}),
    S.FAILED: frozenset({S.PROBED}),
}

# The step (actor name) that moves an asset on from each state: sent when the asset enters the state,
# and again by assets_resume_stalled when it has sat there too long.
NEXT_STEP: dict[str, str] = {
    S.UPLOADED: "probe_asset",
    S.PROBING: "probe_asset",
    S.PROVISIONAL: "provisional_asset",
    S.PROBED: "transcode_asset",
    S.TRANSCODING: "transcode_asset",
    S.TRANSCODED: "publish_asset",
}

# The running state each step claims, and the states it claims it from. A running state is among its
# own sources: a step left running by a dead worker is claimed again by the redelivered (or resumed)
# message, which is why these states are in NEXT_STEP too.
CLAIMS: dict[str, tuple[str, ...]] = {
    S.PROBING: (S.UPLOADED, S.PROBING),
    S.PROVISIONAL: (S.PROVISIONAL,),
    S.TRANSCODING: (S.PROBED, S.TRANSCODING),
}
RETRIED_WHEN_STALE = frozenset(state for state, sources in CLAIMS.items() if state in sources)

# How often a running encode reports its progress (heartbeat).
PROGRESS_EVERY_SECONDS = 2.0

# The step named in the failure metric, by the state the asset failed in.
_STEP_OF_STATE: dict[str, str] = {S.PROBING: "probe", S.TRANSCODING: "transcode", S.TRANSCODED: "publish"}


class TransitionRefused(ValueError):
    """A move the transition table does not allow: a programming error, nothing was changed."""


def allowed(from_state: str, to_state: str) -> bool:
    return to_state in TRANSITIONS.get(from_state, frozenset())


def _check(from_states: tuple[str, ...] | list[str], to_state: str) -> None:
    refused = [state for state in from_states if not allowed(state, to_state)]
    if refused:
        raise TransitionRefused(f"{', '.join(refused)} -> {to_state} is not a transition of the pipeline")


def send_next_step(asset_id: int, state: str) -> None:
    """Send the step that follows ``state`` once the current transaction commits (none after READY/FAILED)."""
    if state in NEXT_STEP:
        tasks.send_on_commit(NEXT_STEP[state], asset_id)


def restart(asset_id: int, **changes: Any) -> None:
    """A new upload: the asset starts its next version at UPLOADED from whatever state it was in, with
    ``changes`` (the new source); the probe is sent after commit."""
    MediaAsset.objects.filter(pk=asset_id).update(
        status=S.UPLOADED,
        failure_reason="",
        progress=0,
        building_version=F("building_version") + 1,
        updated_at=timezone.now(),
        **changes,
    )
    send_next_step(asset_id, S.UPLOADED)


def claim(asset_id: int, *, to_state: str) -> MediaAsset | None:
    """Compare-and-set the asset into the running state ``to_state`` (from the states CLAIMS lists);
    the claimed asset, or None when another worker or a newer upload won."""
    from_states = CLAIMS[to_state]
    _check(from_states, to_state)
    claimed = MediaAsset.objects.filter(pk=asset_id, status__in=from_states).update(
        status=to_state, attempts=F("attempts") + 1, updated_at=timezone.now()
    )
    if claimed != 1:
        logger.info("asset %s: step %s skipped (state changed)", asset_id, to_state)
        return None
    return MediaAsset.objects.get(pk=asset_id)


def advance(
    asset_id: int, *, version: int, from_state: str, to_state: str, when: Q | None = None, **changes: Any
) -> bool:
    """Move the asset from ``from_state`` to ``to_state`` with ``changes``, if it is still there building
    ``version`` (and ``when`` holds); the next step is sent after commit. True when it moved."""
    _check([from_state], to_state)
    with transaction.atomic():
        rows = MediaAsset.objects.filter(pk=asset_id, status=from_state, building_version=version)
        moved = rows.filter(when or Q()).update(status=to_state, updated_at=timezone.now(), **changes) == 1
        if moved:
            send_next_step(asset_id, to_state)
    return moved


def fail(asset_id: int, *, version: int, in_state: str, reason: str) -> bool:
    """A permanent failure of the step running in ``in_state``: the asset ends FAILED with ``reason``
    (shown to its owner), unless it has moved on meanwhile. True when it failed."""
    _check([in_state], S.FAILED)
    logger.warning("asset %s failed: %s", asset_id, reason)
    failed = MediaAsset.objects.filter(pk=asset_id, status=in_state, building_version=version).update(
        status=S.FAILED, failure_reason=reason[:1000], progress=0, updated_at=timezone.now()
    )
    if failed:
        ASSET_FAILURES.labels(_STEP_OF_STATE.get(in_state, "other")).inc()
    return bool(failed)


def withdraw(asset_id: int, *, reason: str) -> bool:
    """A READY asset whose published version is withdrawn with nothing to replace it ends FAILED with
    ``reason``. Not a step's failure: not counted as one. True when it was READY."""
    _check([S.READY], S.FAILED)
    return bool(MediaAsset.objects.filter(pk=asset_id, status=S.READY).update(status=S.FAILED, failure_reason=reason))


def rebuild(asset_id: int, *, from_states: list[str], version: int | None = None) -> bool:
    """Build the next version from the stored original (probe and ladder kept), if the asset is in one
    of ``from_states`` (building ``version``, when given) and was probed; True when started. The
    transcode step is sent after commit."""
    _check(from_states, S.PROBED)
    rows = MediaAsset.objects.filter(pk=asset_id, status__in=from_states, probe__has_key="duration")
    if version is not None:
        rows = rows.filter(building_version=version)
    started = rows.update(
        status=S.PROBED,
        failure_reason="",
        progress=0,
        building_version=F("building_version") + 1,
        updated_at=timezone.now(),
    )
    if started:
        send_next_step(asset_id, S.PROBED)
    return bool(started)


def heartbeat(asset_id: int, *, in_state: str, version: int | None = None, progress: int | None = None) -> None:
    """A running step is alive (and ``progress`` percent done): assets_resume_stalled leaves it alone."""
    rows = MediaAsset.objects.filter(pk=asset_id, status=in_state)
    if version is not None:
        rows = rows.filter(building_version=version)
    rows.update(updated_at=timezone.now(), **({} if progress is None else {"progress": progress}))


def assets_resume_stalled(*, idle_for: timedelta) -> list[int]:
    """Send the next step again for assets that have not moved for ``idle_for``.

    Covers a broker that was down when a step was sent, and a worker that died so long ago that its
    message is gone. A step that is in fact still queued runs once and the duplicate loses the
    compare-and-set, so this is safe to run at any time (e.g. from cron).
    """
    cutoff = timezone.now() - idle_for
    stalled = list(
        MediaAsset.objects.filter(status__in=list(NEXT_STEP), updated_at__lt=cutoff)
        # An asset whose first (resumable) upload is still arriving has no source to probe yet.
        .exclude(status=S.UPLOADED, source_key="")
        .values_list("pk", "status")
    )
    for asset_id, status in stalled:
        tasks.send_now(NEXT_STEP[status], asset_id)
    return [asset_id for asset_id, _ in stalled]
