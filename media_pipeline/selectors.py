"""Reads other apps use: is an asset playable, and where its published version lives."""

from __future__ import annotations

import uuid
from typing import TypedDict

from django.conf import settings

from media_pipeline import content_keys, layout
from media_pipeline.models import ContentKey, MediaAsset, ReplicaState, VersionReplica
from media_pipeline.regions import regions_all


class PlaybackInfo(TypedDict):
    prefix: str
    version: int
    hls: str
    dash: str
    poster: str
    duration: float | None
    regions: list[str]
    # Key id (32 hex digits) when the published version is encrypted, else None.
    kid: str | None


def asset_playback_info(*, asset: MediaAsset | None) -> PlaybackInfo | None:
    """The published version's prefix and file names, or None when nothing is playable yet."""
    if asset is None or asset.published_prefix is None:
        return None
    # Asked twice per playback request (entitlement, then signing): one query per asset instance.
    cached: PlaybackInfo | None = getattr(asset, "_playback_info", None)
    if cached is not None and cached["prefix"] == asset.published_prefix:
        return cached
    asset._playback_info = PlaybackInfo(  # type: ignore[attr-defined]
        prefix=asset.published_prefix,
        version=asset.published_version,
        hls=layout.HLS_MASTER,
        dash=layout.DASH_MANIFEST,
        poster=layout.POSTER,
        duration=asset.duration_seconds,
        regions=asset_complete_regions(asset=asset),
        kid=asset.published_kid.hex if asset.published_kid else None,
    )
    return asset._playback_info  # type: ignore[attr-defined]


def asset_complete_regions(*, asset: MediaAsset) -> list[str]:
    """Regions holding the whole published version, verified, in configuration order (primary first)."""
    if asset.published_prefix is None:
        return []
    return version_complete_regions(prefix=asset.published_prefix)


def version_complete_regions(*, prefix: str) -> list[str]:
    """Regions holding the whole version under ``prefix``. A version published before its region rows
    existed counts as complete in the primary only."""
    states = dict(VersionReplica.objects.filter(prefix=prefix).values_list("region", "state"))
    return [
        region.name
        for region in regions_all()
        if states.get(region.name) == ReplicaState.COMPLETE or (region.primary and region.name not in states)
    ]


def asset_replicas(*, asset: MediaAsset) -> list[VersionReplica]:
    """Every version of the asset in every region, newest version first, for the admin and the API."""
    rows = VersionReplica.objects.filter(asset=asset).exclude(state=ReplicaState.DELETED)
    return list(rows.order_by("-available_at", "prefix", "region"))


def content_key_get(*, asset: MediaAsset, version: int, kid: str) -> content_keys.ContentKeyMaterial | None:
    """The opened content key of one version when ``kid`` (32 hex digits) is that version's key id."""
    try:
        kid_value = uuid.UUID(hex=kid)
    except ValueError:
        return None
    row = ContentKey.objects.filter(asset=asset, version=version, kid=kid_value).first()
    if row is None:
        return None
    return content_keys.open_sealed(
        row.key_sealed, kid=row.kid, secret=settings.CONTENT_KEY_SECRET.encode(), asset_id=asset.pk, version=version
    )
