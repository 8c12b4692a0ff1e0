"""Names of the objects inside one published version prefix (``<key_prefix>/v<N>/``).

Playlists reference everything else relatively, so these few names are the whole contract
between the pipeline and playback.
"""

from __future__ import annotations

HLS_MASTER = "master.m3u8"
DASH_MANIFEST = "manifest.mpd"
POSTER = "poster.jpg"
# Scrub previews: a sprite of small frames and the WebVTT track naming a tile per time range.
STORYBOARD_SPRITE = "storyboard.jpg"
STORYBOARD_TRACK = "storyboard.vtt"


def source_key(*, asset_public_id: str, upload_id: str) -> str:
    """Generated storage key of an uploaded original; never derived from the user's file name."""
    return f"sources/{asset_public_id}/{upload_id}"
