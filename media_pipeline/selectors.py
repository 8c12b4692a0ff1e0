"""Reads other apps use: is an asset playable, and where its published version lives."""

from __future__ import annotations

from typing import TypedDict

from media_pipeline import layout
from media_pipeline.models import MediaAsset


class PlaybackInfo(TypedDict):
    prefix: str
    hls: str
    dash: str
    poster: str
    duration: float | None


def asset_playback_info(*, asset: MediaAsset | None) -> PlaybackInfo | None:
    """The published version's prefix and file names, or None when nothing is playable yet."""
    if asset is None or asset.published_prefix is None:
        return None
    return PlaybackInfo(
        prefix=asset.published_prefix,
        hls=layout.HLS_MASTER,
        dash=layout.DASH_MANIFEST,
        poster=layout.POSTER,
        duration=asset.duration_seconds,
    )
