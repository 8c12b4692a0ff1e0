"""Which pathways (storage regions) steering should demote: failing health checks or bad QoE.

A region is probed at most every PLAYBACK_HEALTH_CHECK_SECONDS per process: a HEAD of the version's
index in its store (with the replication timeouts) and, when an edge serves the region
(REGION_<NAME>_BASE_URL), a GET of the edge's PLAYBACK_EDGE_HEALTH_PATH (deploy/nginx answers it).
A pathway whose share of failed views in the last minute of signed player beacons exceeds
PLAYBACK_STEERING_MAX_FAILURE_PCT is demoted too, but only with enough views to judge (MIN_VIEWS)
and failures reported by at least PLAYBACK_STEERING_MIN_REPORTERS distinct reporters (users, or the
networks of anonymous viewers: analytics/beacons.py reporter_of), so neither a forged batch (refused:
no view token) nor one real session claiming many failures moves anyone (docs/adr/0020). Demoted
pathways stay in the list, last: a fallback is better than none.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.request

from django.conf import settings

from analytics.selectors import pathway_failure_rates
from media_pipeline.regions import Region, store_for

logger = logging.getLogger(__name__)
MIN_VIEWS = 20

_checked: dict[str, tuple[float, bool]] = {}
_lock = threading.Lock()


def region_healthy(region: Region, *, probe_key: str) -> bool:
    now = time.monotonic()
    with _lock:
        cached = _checked.get(region.name)
        if cached and now - cached[0] < settings.PLAYBACK_HEALTH_CHECK_SECONDS:
            return cached[1]
    try:
        healthy = store_for(region).head(probe_key) is not None and _edge_answers(region)
    except Exception as exc:  # noqa: BLE001 - any failure to answer is a failed check
        logger.warning("region %s failed its health check: %s", region.name, exc)
        healthy = False
    with _lock:
        _checked[region.name] = (now, healthy)
    return healthy


def _edge_answers(region: Region) -> bool:
    path = settings.PLAYBACK_EDGE_HEALTH_PATH
    if not region.base_url or not path:
        return True
    with urllib.request.urlopen(region.base_url + path, timeout=settings.REPLICATION_CONNECT_TIMEOUT_SECONDS) as answer:
        return answer.status == 200


def health_forget() -> None:
    with _lock:
        _checked.clear()


def unhealthy_pathways(*, regions: list[Region], prefix: str) -> set[str]:
    demoted = {region.name for region in regions if not region_healthy(region, probe_key=prefix + "files.json")}
    for pathway, reports in pathway_failure_rates().items():
        if (
            reports.views >= MIN_VIEWS
            and reports.reporters >= settings.PLAYBACK_STEERING_MIN_REPORTERS
            and 100 * reports.failed_views / reports.views > settings.PLAYBACK_STEERING_MAX_FAILURE_PCT
        ):
            demoted.add(pathway)
    return demoted
