"""Content steering over HTTP: per-session steered manifests and the steering server.

``/steer/<token>/<version prefix>master.m3u8`` and ``.../manifest.mpd`` list every storage region
holding the whole version as a pathway (each under its own signed base); ``.../steering.json``
answers players' steering requests with the pathway priority for this viewer. The token is the
origin's path token for the version prefix, so the same checks apply (ADR 0003).
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views.decorators.http import require_GET

from media_pipeline import layout
from media_pipeline.regions import Region, regions_all, store_for
from media_pipeline.selectors import version_complete_regions
from playback import health
from playback.binding import binding_for
from playback.services import STEERING_NAME
from playback.signers import signer_get
from playback.steering import Pathway, pathway_priority, steer_dash_mpd, steer_hls_master, steering_manifest
from playback.tokens import TokenResult, prefix_of, token_verify
from playback.views import text_refusal

logger = logging.getLogger(__name__)
MANIFEST_LIMIT = 4 * 1024 * 1024


@require_GET
def steer(request: HttpRequest, token: str, key: str) -> HttpResponseBase:
    binding = binding_for(request)
    verdict = token_verify(
        secret=settings.PLAYBACK_TOKEN_SECRET.encode(),
        token=token,
        path_key=key,
        now=int(time.time()),
        binding=binding.token_value(),
    )
    if verdict is TokenResult.BAD:
        return text_refusal("forbidden", 403)
    if verdict is TokenResult.EXPIRED:
        return text_refusal("playback token expired", 410)
    prefix = prefix_of(key)
    assert prefix is not None  # token_verify refuses keys outside a version prefix
    name = key[len(prefix) :]
    complete = version_complete_regions(prefix=prefix)
    regions = [region for region in regions_all() if region.name in complete]
    if not regions:
        return text_refusal("not found", 404)
    steering_uri = request.build_absolute_uri(f"{request.path.removesuffix(name)}{STEERING_NAME}")
    if name == STEERING_NAME:
        return _steering(request, regions, prefix, steering_uri)
    if name not in (layout.HLS_MASTER, layout.DASH_MANIFEST):
        return text_refusal("not found", 404)
    expires_at = int(token.split(".", 1)[0])
    pathways = [
        Pathway(region.name, request.build_absolute_uri(signer_get(region).sign_prefix(prefix=prefix,
                                                                                       expires_at=expires_at,
                                                                                       binding=binding)))
        for region in _ordered(request, regions, prefix)
    ]  # fmt: skip
    stored = _read_manifest(regions, prefix + name)
    if name == layout.HLS_MASTER:
        body = steer_hls_master(stored, pathways=pathways, steering_uri=steering_uri)
        content_type = "application/vnd.apple.mpegurl"
    else:
        body = steer_dash_mpd(stored, pathways=pathways, steering_uri=steering_uri)
        content_type = "application/dash+xml"
    response = HttpResponse(body, content_type=content_type)
    # Carries this viewer's signed URLs: private, and as short-lived as a playlist.
    response["Cache-Control"] = "private, max-age=60"
    response["Access-Control-Allow-Origin"] = "*"
    return response


def _viewer_country(request: HttpRequest) -> str:
    header = settings.PLAYBACK_COUNTRY_HEADER
    return request.headers.get(header, "").strip()[:2].upper() if header else ""


def _ordered(request: HttpRequest, regions: list[Region], prefix: str) -> list[Region]:
    country = _viewer_country(request)
    priority = pathway_priority(
        complete=[region.name for region in regions],
        nearest=[region.name for region in regions if country and country in region.countries],
        demoted=health.unhealthy_pathways(regions=regions, prefix=prefix),
    )
    by_name = {region.name: region for region in regions}
    return [by_name[name] for name in priority]


def _steering(request: HttpRequest, regions: list[Region], prefix: str, steering_uri: str) -> JsonResponse:
    ordered = [region.name for region in _ordered(request, regions, prefix)]
    current = request.GET.get("_HLS_pathway") or request.GET.get("_DASH_pathway") or ""
    logger.debug("steering %s: player on %r, priority %s", prefix, current, ordered)
    response = JsonResponse(
        steering_manifest(priority=ordered, reload_uri=steering_uri, ttl=settings.PLAYBACK_STEERING_TTL_SECONDS)
    )
    response["Cache-Control"] = "no-store"
    response["Access-Control-Allow-Origin"] = "*"
    return response


def _read_manifest(regions: list[Region], key: str) -> str:
    """The stored manifest from the first complete region that answers."""
    last_error: Exception | None = None
    for region in regions:
        try:
            store = store_for(region)
            info = store.head(key)
            if info is None or info.size > MANIFEST_LIMIT:
                continue
            return b"".join(store.read(key)).decode()
        except Exception as exc:  # noqa: BLE001 - that region is down: the next one has the same bytes
            last_error = exc
    raise RuntimeError(f"{key} is unreadable in every region: {last_error}")
