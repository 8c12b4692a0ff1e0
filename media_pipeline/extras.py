"""Extras of a version besides the streams: the storyboard, captions and chapters (files in the
version folder, and the manifest entries naming the captions). Used by services while a version is
built, and when one is derived from the published version for a change of captions (docs/adr)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from django.conf import settings

from media_pipeline import layout, storyboard
from media_pipeline.ffmpeg import rung_file
from media_pipeline.ladder import Rung
from media_pipeline.text_tracks import (
    CAPTIONS,
    CHAPTERS,
    CHAPTERS_FILE,
    TextTrack,
    dash_mpd_with_text,
    hls_master_with_subtitles,
    hls_subtitles_playlist,
    tracks_digest,
)
from media_pipeline.tools import run_tool


def media_fingerprint(*, source_key: str, ladder: list[dict[str, Any]], protected: bool) -> str:
    """What the segments of a version depend on. A version with the same fingerprint as the published
    one can reuse its segments (only text tracks changed); anything else needs an encode."""
    inputs = {"source": source_key, "ladder": ladder, "protected": protected}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def write_storyboard(*, encoded: Path, out: Path, rungs: list[Rung], duration: float) -> None:
    """The sprite and its WebVTT track, from the smallest rung (already oriented, square pixels)."""
    if not rungs:
        return  # nothing to look at (a sound-only version)
    smallest = min(rungs, key=lambda rung: rung.width * rung.height)
    board = storyboard.plan_storyboard(duration=duration, width=smallest.width, height=smallest.height)
    run_tool(
        storyboard.storyboard_command(
            ffmpeg=settings.FFMPEG_BIN,
            source=encoded / rung_file(smallest),
            target=out / storyboard.SPRITE,
            board=board,
        ),
        timeout=600,
        work_dir=out,
    )
    (out / storyboard.TRACK).write_text(storyboard.storyboard_vtt(board, duration=duration))


def write_text_tracks(*, out: Path, tracks: list[TextTrack], duration: float) -> None:
    """Each track's WebVTT file (and a subtitles playlist per caption language) into ``out``, and the
    packager's manifests there rewritten to carry the captions."""
    for track in tracks:
        (out / track.file_name).write_text(track.vtt)
        if track.kind == CAPTIONS:
            (out / track.playlist_name).write_text(hls_subtitles_playlist(track, duration=duration))
    master, mpd = out / layout.HLS_MASTER, out / layout.DASH_MANIFEST
    master.write_text(hls_master_with_subtitles(master.read_text(), tracks))
    mpd.write_text(dash_mpd_with_text(mpd.read_text(), tracks))


def version_meta(*, fingerprint: str, tracks: list[TextTrack], has_storyboard: bool) -> dict[str, Any]:
    """Recorded in the version's index: what its segments came from, which text tracks it carries, and
    the extras playback announces (copied to MediaAsset.published_extras by the publish flip)."""
    extras: dict[str, Any] = {
        "captions": [
            {"language": t.language, "label": t.label, "file": t.file_name} for t in tracks if t.kind == CAPTIONS
        ],
    }
    if has_storyboard:
        extras["storyboard"] = storyboard.TRACK
    chapters = [t for t in tracks if t.kind == CHAPTERS]
    if chapters:
        extras["chapters"] = chapters[0].file_name
    return {"media": fingerprint, "text_tracks": tracks_digest(tracks), "extras": extras}


def is_text_track_file(name: str) -> bool:
    """Objects a derived version writes afresh instead of copying: text tracks and the two manifests."""
    return (
        name in (layout.HLS_MASTER, layout.DASH_MANIFEST)
        or (name.startswith("subs_") and name.endswith((".vtt", ".m3u8")))
        or name == CHAPTERS_FILE
    )
