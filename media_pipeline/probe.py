"""Decide with ffprobe whether a source is a playable video, and describe it.

Pure apart from running ffprobe; ``parse_probe`` is unit-tested on JSON alone.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from media_pipeline.errors import InputRejected

IMAGE_CODECS = {"png", "mjpeg", "bmp", "gif", "webp", "tiff", "jpegls", "jpeg2000", "ppm", "pam", "pgm", "qoi"}
IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "gif", "webp_pipe", "tiff_pipe", "ppm_pipe"}
MIN_SIDE, MAX_SIDE = 16, 8192
MIN_DURATION, MAX_DURATION = 0.5, 24 * 3600.0


@dataclass(frozen=True)
class ProbeResult:
    duration: float
    width: int  # as displayed, after rotation
    height: int
    fps: float
    rotation: int  # 0, 90, 180 or 270
    video_codec: str
    has_audio: bool
    audio_codec: str | None
    audio_channels: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_ffprobe(*, ffprobe: str, path: Path, timeout: float = 60.0) -> dict[str, Any]:
    """Run ffprobe on a local file; raise InputRejected when it cannot read it."""
    if path.stat().st_size == 0:
        raise InputRejected("the file is empty")
    command = [
        ffprobe, "-v", "error", "-protocol_whitelist", "file", "-threads", "1",
        "-print_format", "json", "-show_format", "-show_streams", str(path),
    ]  # fmt: skip
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InputRejected(f"the file could not be read within {timeout:.0f} s") from exc
    if completed.returncode != 0:
        raise InputRejected("not a readable video file")
    return json.loads(completed.stdout or "{}")


def _fraction(value: str | None) -> float:
    if not value or value in {"0/0", "N/A"}:
        return 0.0
    if "/" in value:
        num, den = value.split("/", 1)
        return float(num) / float(den) if float(den) else 0.0
    return float(value)


def _rotation(stream: dict[str, Any]) -> int:
    degrees = 0.0
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            degrees = float(side["rotation"])
    if not degrees and "rotate" in (stream.get("tags") or {}):
        degrees = -float(stream["tags"]["rotate"])
    # ffprobe reports the display matrix counter-clockwise (e.g. -90 for a phone held upright).
    return int(round(-degrees)) % 360


def parse_probe(data: dict[str, Any]) -> ProbeResult:
    """Turn ffprobe's JSON into a ProbeResult, or raise InputRejected with the reason."""
    streams = data.get("streams") or []
    fmt = data.get("format") or {}
    videos = [s for s in streams if s.get("codec_type") == "video" and not _is_attached_picture(s)]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    if not videos:
        if any(_is_attached_picture(s) for s in streams) or audios:
            raise InputRejected("no video stream (audio-only lessons are not supported yet)")
        raise InputRejected("not a video: no video stream found")
    video = videos[0]
    codec = str(video.get("codec_name") or "")
    if codec in IMAGE_CODECS and (fmt.get("format_name") in IMAGE_FORMATS or _frame_count(video) <= 1):
        raise InputRejected("an image, not a video")
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise InputRejected(f"unsupported picture size {width}x{height}")
    duration = _fraction(fmt.get("duration")) or _fraction(video.get("duration"))
    if duration < MIN_DURATION:
        raise InputRejected("the video is too short or its duration is unknown")
    if duration > MAX_DURATION:
        raise InputRejected(f"the video is longer than {MAX_DURATION / 3600:.0f} hours")
    fps = _fraction(video.get("avg_frame_rate")) or _fraction(video.get("r_frame_rate"))
    if not 1.0 <= fps <= 240.0:
        fps = 25.0  # unknown or variable: the encoder will normalise it
    rotation = _rotation(video)
    if rotation in (90, 270):
        width, height = height, width
    audio = audios[0] if audios else None
    return ProbeResult(
        duration=round(duration, 3),
        width=width,
        height=height,
        fps=round(fps, 3),
        rotation=rotation,
        video_codec=codec,
        has_audio=audio is not None,
        audio_codec=str(audio.get("codec_name")) if audio else None,
        audio_channels=int(audio.get("channels") or 0) if audio else 0,
    )


def _is_attached_picture(stream: dict[str, Any]) -> bool:
    return bool((stream.get("disposition") or {}).get("attached_pic"))


def _frame_count(stream: dict[str, Any]) -> int:
    try:
        return int(stream.get("nb_frames") or 0)
    except ValueError:
        return 0


def probe_file(*, ffprobe: str, path: Path, timeout: float = 60.0) -> ProbeResult:
    return parse_probe(run_ffprobe(ffprobe=ffprobe, path=path, timeout=timeout))
