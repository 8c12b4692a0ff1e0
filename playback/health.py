"""Which pathways (storage regions) steering should demote: failing health checks or bad QoE.

A region is probed (HEAD of the version's index in its store, with the replication timeouts) at
most every PLAYBACK_HEALTH_CHECK_SECONDS per process; a pathway whose share of failed plays in the
last minute of player beacons exceeds PLAYBACK_STEERING_MAX_FAILURE_PCT (with enough plays to
judge) is demoted too. Demoted pathways stay in the list, last: a fallback is better than none.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings

from analytics.selectors import pathway_failure_rates
from media_pipeline.regions import Region, store_for

logger = logging.getLogger(__name__)
MIN_PLAYS = 20

_checked: dict[str, tuple[float, bool]] = {}
_lock = threading.Lock()


def region_healthy(region: Region, *, probe_key: str) -> bool:
    now = time.monotonic()
    with _lock:
        cached = _checked.get(region.name)
        if cached and now - cached[0] < settings.PLAYBACK_HEALTH_CHECK_SECONDS:
            return cached[1]
    try:
        healthy = store_for(region).head(probe_key) is not None
    except Exception as exc:  # noqa: BLE001 - any failure to answer is a failed check
        logger.warning("region %s failed its health check: %s", region.name, exc)
        healthy = False
    with _lock:
        _checked[region.name] = (now, healthy)
    return healthy


def health_forget() -> None:
    with _lock:
        _checked.clear()


def unhealthy_pathways(*, regions: list[Region], prefix: str) -> set[str]:
    demoted = {region.name for region in regions if not region_healthy(region, probe_key=prefix + "files.json")}
    for pathway, (plays, failures) in pathway_failure_rates().items():
        if plays >= MIN_PLAYS and 100 * failures / plays > settings.PLAYBACK_STEERING_MAX_FAILURE_PCT:
            demoted.add(pathway)
    return demoted
