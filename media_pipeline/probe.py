"""Decide with ffprobe whether a source is a playable lesson (video, or audio only), and describe it.

Pure apart from reading the file's first bytes and running ffprobe (through media_pipeline.tools);
``parse_probe`` is unit-tested on JSON alone. Every reason raised here is shown to the educator
(docs/adr: accepted input policy).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from media_pipeline.container_damage import INCOMPLETE, Source, matroska_damage, mpegts_damage, opened
from media_pipeline.errors import InputRejected
from media_pipeline.tools import ToolFailed, run_tool

IMAGE_CODECS = {"png", "mjpeg", "bmp", "gif", "webp", "tiff", "jpegls", "jpeg2000", "ppm", "pam", "pgm", "qoi"}
IMAGE_FORMATS = {
    "image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "gif", "gif_pipe", "webp_pipe", "tiff_pipe", "ppm_pipe",
}  # fmt: skip
MIN_SIDE, MAX_SIDE = 16, 8192
MIN_DURATION, MAX_DURATION = 0.5, 24 * 3600.0

# The only demuxers ffmpeg and ffprobe may use on an upload (`-format_whitelist`; names as in
# `ffmpeg -demuxers`, any one name of a multi-name demuxer matches). Playlist and script demuxers
# (hls, dash, concat, ffconcat, image2 sequences) are absent: they open further files named inside the
# upload. Single-image demuxers are present only so an image is recognised and refused by name.
ACCEPTED_FORMATS = (
    "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "asf", "mpegts", "mpeg", "flv",
    "ogg", "mxf", "dv", "wav", "w64", "aiff", "caf", "mp3", "aac", "ac3", "eac3", "flac", "amr",
    "png_pipe", "jpeg_pipe", "bmp_pipe", "gif", "gif_pipe", "webp_pipe", "tiff_pipe", "ppm_pipe",
)  # fmt: skip
FORMAT_WHITELIST = ",".join(ACCEPTED_FORMATS)

# ffprobe's field_order for interlaced pictures (top or bottom field first, coded either way).
INTERLACED_FIELD_ORDERS = {"tt", "bb", "tb", "bt"}
# Frame rates cameras and screen recorders use; a measured average rate is rounded up to one of them.
STANDARD_RATES = (10.0, 12.0, 12.5, 15.0, 20.0, 24000 / 1001, 24.0, 25.0, 30000 / 1001, 30.0, 48.0, 50.0,
                  60000 / 1001, 60.0, 72.0, 90.0, 100.0, 120.0, 144.0, 240.0)  # fmt: skip


@dataclass(frozen=True)
class ProbeResult:
    duration: float
    width: int  # as displayed: after rotation, in square pixels (0 for a sound-only lesson)
    height: int
    fps: float  # a constant rate the encoder produces (variable-rate sources are normalised)
    rotation: int  # 0, 90, 180 or 270
    video_codec: str
    has_audio: bool
    audio_codec: str | None
    audio_channels: int
    has_video: bool = True
    interlaced: bool = False
    cover_art: bool = False  # a sound-only file with an attached picture (album art)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ffprobe_command(*, ffprobe: str, path: Path) -> list[str]:
    return [
        # Warnings too: "detected only with low score" tells a guess from a real format (unreadable_reason).
        ffprobe, "-v", "warning", "-protocol_whitelist", "file", "-format_whitelist", FORMAT_WHITELIST,
        "-threads", "1", "-print_format", "json", "-show_format", "-show_streams", str(path),
    ]  # fmt: skip


def run_ffprobe(*, ffprobe: str, path: Path, timeout: float = 60.0, work_dir: Path | None = None) -> dict[str, Any]:
    """Run ffprobe on a local file; raise InputRejected with the reason when it is not usable media.
    ``work_dir``: the tool's HOME and TMPDIR (default: the file's folder)."""
    if path.stat().st_size == 0:
        raise InputRejected("the file is empty")
    # Cut short or broken, seen in the container's structure (ffprobe reads a cut file without a word).
    damage = iso_bmff_damage(path) or matroska_damage(path) or mpegts_damage(path)
    if damage:
        raise InputRejected(damage)
    try:
        command = ffprobe_command(ffprobe=ffprobe, path=path)
        stdout = run_tool(command, timeout=timeout, work_dir=work_dir or path.parent)
    except ToolFailed as exc:
        if exc.timed_out:
            raise InputRejected(f"the file could not be read within {timeout:.0f} s") from exc
        if exc.limit:
            raise InputRejected(f"the file could not be read: {exc}") from exc
        raise InputRejected(unreadable_reason(path, exc.stderr)) from exc
    return json.loads(stdout or "{}")


# --- Why a file cannot be read ------------------------------------------------------------------------

# Top-level boxes an MP4/MOV file starts with; anything else at offset 0 is not ISO BMFF.
_ISO_FIRST_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_ISO_INDEX_BOXES = {b"moov", b"moof"}
_INCOMPLETE = INCOMPLETE


def iso_bmff_damage(path: Source) -> str | None:
    """For an MP4/MOV file, why its top-level box structure shows it is cut short or damaged; else None.

    Reads only box headers. A file cut mid-way through its media data still has an index (moov) when it
    was written with faststart, and ffprobe then reads it happily; the boxes say it is incomplete.
    """
    with opened(path) as (handle, size):
        head = handle.read(8)
        if len(head) < 8 or head[4:8] not in _ISO_FIRST_BOXES:
            return None
        offset, seen = 0, set()
        while offset < size:
            handle.seek(offset)
            header = handle.read(16)
            if len(header) < 8:
                return _INCOMPLETE.format(detail="in a box header")
            box_size, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if box_size == 1:
                if len(header) < 16:
                    return _INCOMPLETE.format(detail="in a box header")
                box_size = int.from_bytes(header[8:16], "big")
            elif box_size == 0:  # "to the end of the file"
                box_size = size - offset
            if box_size < 8 or not re.fullmatch(rb"[\x20-\x7e]{4}", kind):
                return "the file is damaged: its MP4 structure is broken"
            if offset + box_size > size:
                return _INCOMPLETE.format(
                    detail=f"its '{kind.decode()}' box needs {offset + box_size - size} more bytes"
                )
            seen.add(kind)
            offset += box_size
    if not seen & _ISO_INDEX_BOXES:
        return _INCOMPLETE.format(detail="its index (moov) was never written")
    return None


_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
_NOT_ON_WHITELIST = re.compile(r"\[([\w,]+) @ [^\]]*\] Format not on whitelist")


def unreadable_reason(path: Path, stderr: str) -> str:
    """The educator's reason for a file ffprobe could not open, from its first bytes and ffprobe's error."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "an image, not a video"
    refused = _NOT_ON_WHITELIST.search(stderr)
    # Random bytes sometimes look a little like a raw stream (h263, say): ffprobe then names a format it
    # only guessed, and that name would mislead the educator.
    if refused and f"Format {refused.group(1)} detected only with low score" not in stderr:
        return f"a file of a kind that is not accepted ({refused.group(1)}); upload the video or audio file itself"
    if _looks_like_text(head):
        return "a text file, not a video or audio file"
    return "not a video or audio file (unknown or damaged format)"


def _looks_like_text(head: bytes) -> bool:
    for cut in range(4):  # the 4096th byte may fall inside a character
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return bool(text) and all(ch.isprintable() or ch in "\r\n\t\f" for ch in text)
    return False


# --- What ffprobe found -------------------------------------------------------------------------------


def _fraction(value: str | None) -> float:
    if not value or value in {"0/0", "N/A"}:
        return 0.0
    if ":" in value:
        value = value.replace(":", "/")
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


def constant_fps(stream: dict[str, Any]) -> float:
    """The constant rate to encode at: the smallest standard rate at or above the average rate (allowing
    3 % below it), so a variable-rate phone video keeps its motion and every GOP is two seconds; 25 when
    unknown."""
    fps = _fraction(stream.get("avg_frame_rate")) or _fraction(stream.get("r_frame_rate"))
    if not 1.0 <= fps <= 1000.0:
        return 25.0  # unknown: the encoder will normalise it
    for rate in STANDARD_RATES:
        if abs(fps - rate) <= rate * 0.0005:
            return round(rate, 3)
    for rate in STANDARD_RATES:
        if fps <= rate * 1.03:
            return round(rate, 3)
    return round(fps, 3)


def _decodable(stream: dict[str, Any]) -> bool:
    return str(stream.get("codec_name") or "none") != "none"


def _codec_label(stream: dict[str, Any]) -> str:
    return str(stream.get("codec_tag_string") or stream.get("codec_long_name") or "unknown")


def _display_size(stream: dict[str, Any]) -> tuple[int, int]:
    """Width and height in square pixels: an anamorphic source (sample aspect ratio not 1:1) is
    shown wider or narrower than it is stored."""
    width, height = int(stream.get("width") or 0), int(stream.get("height") or 0)
    sar = _fraction(stream.get("sample_aspect_ratio"))
    if sar > 0 and abs(sar - 1.0) > 0.001 and width:
        width = max(2, int(round(width * sar / 2.0)) * 2)
    return width, height


def parse_probe(data: dict[str, Any]) -> ProbeResult:
    """Turn ffprobe's JSON into a ProbeResult, or raise InputRejected with the reason."""
    streams = data.get("streams") or []
    fmt = data.get("format") or {}
    videos = [s for s in streams if s.get("codec_type") == "video" and not _is_attached_picture(s)]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    if not videos and not audios:
        if any(_is_attached_picture(s) for s in streams):
            raise InputRejected("an image, not a video")
        if streams:
            kinds = sorted({str(s.get("codec_type") or "unknown") for s in streams})
            raise InputRejected(f"no video or audio stream (only {', '.join(kinds)})")
        raise InputRejected("not a video: no video or audio stream found")
    if videos and not _decodable(videos[0]):
        raise InputRejected(f"the video uses a format that cannot be decoded ({_codec_label(videos[0])})")
    if audios and not _decodable(audios[0]):
        raise InputRejected(f"the sound uses a format that cannot be decoded ({_codec_label(audios[0])})")
    audio = audios[0] if audios else None
    if not videos:
        return _audio_only(fmt=fmt, audio=audios[0], cover_art=any(_is_attached_picture(s) for s in streams))
    video = videos[0]
    codec = str(video.get("codec_name") or "")
    if codec in IMAGE_CODECS and (fmt.get("format_name") in IMAGE_FORMATS or _frame_count(video) <= 1):
        raise InputRejected("an image, not a video")
    width, height = _display_size(video)
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise InputRejected(
            f"unsupported picture size {width}x{height} (each side must be {MIN_SIDE} to {MAX_SIDE} pixels)"
        )
    duration = _duration(fmt, video, noun="video")
    rotation = _rotation(video)
    if rotation in (90, 270):
        width, height = height, width
    return ProbeResult(
        duration=duration,
        width=width,
        height=height,
        fps=constant_fps(video),
        rotation=rotation,
        video_codec=codec,
        has_audio=audio is not None,
        audio_codec=str(audio.get("codec_name")) if audio else None,
        audio_channels=int(audio.get("channels") or 0) if audio else 0,
        interlaced=str(video.get("field_order") or "") in INTERLACED_FIELD_ORDERS,
    )


def _audio_only(*, fmt: dict[str, Any], audio: dict[str, Any], cover_art: bool) -> ProbeResult:
    """A podcast-style lesson: sound, perhaps with a cover picture; no video ladder."""
    return ProbeResult(
        duration=_duration(fmt, audio, noun="recording"),
        width=0,
        height=0,
        fps=0.0,
        rotation=0,
        video_codec="",
        has_audio=True,
        audio_codec=str(audio.get("codec_name")),
        audio_channels=int(audio.get("channels") or 0),
        has_video=False,
        cover_art=cover_art,
    )


def _duration(fmt: dict[str, Any], stream: dict[str, Any], *, noun: str) -> float:
    duration = _fraction(fmt.get("duration")) or _fraction(stream.get("duration"))
    if duration < MIN_DURATION:
        raise InputRejected(f"the {noun} is too short or its duration is unknown")
    if duration > MAX_DURATION:
        raise InputRejected(f"the {noun} is longer than {MAX_DURATION / 3600:.0f} hours")
    return round(duration, 3)


def _is_attached_picture(stream: dict[str, Any]) -> bool:
    return bool((stream.get("disposition") or {}).get("attached_pic"))


def _frame_count(stream: dict[str, Any]) -> int:
    try:
        return int(stream.get("nb_frames") or 0)
    except ValueError:
        return 0


def probe_file(*, ffprobe: str, path: Path, timeout: float = 60.0, work_dir: Path | None = None) -> ProbeResult:
    return parse_probe(run_ffprobe(ffprobe=ffprobe, path=path, timeout=timeout, work_dir=work_dir))
