"""The lecture of bench/lecture_source.py re-encoded as other codecs and bitrates, generated once and cached.

Why derived from the same lecture: the time-to-playable rows then differ in codec, bitrate and container
only, not in content. Two bitrates:

- ``lecture``: what a lecture-capture box hands over (~1.2 Mbit/s for H.264). H.264 is the lecture
  itself (faststart MP4, keyframes every 4 s); HEVC (x265 CRF 21, about x264's CRF 16) and VP9 (CRF 30,
  capped at 3 Mbit/s) aim at a similar quality, keep the lecture's 4-second GOP and its faststart index.
- ``phone``: what a phone records: H.264 about 16 Mbit/s, HEVC and VP9 about 8 Mbit/s, a keyframe every
  second, and for MP4 the index (moov) at the end (ffmpeg's mp4 muxer default, as phones write it). A
  slide deck re-encoded at 16 Mbit/s would come out at a third of that (still pictures cost nothing),
  so a camera's sensor noise (temporal, luma) is added first: the bits then go where a phone's go.
  Measured on the 1-minute files: H.264 16.4, HEVC 8.3 Mbit/s; VP9 11.7 Mbit/s, because libvpx's
  realtime mode cannot go lower on that noise (even at its coarsest quantiser, cpu-used 6 or 8).

Audio is AAC stereo 48 kHz in MP4, Opus stereo 48 kHz in WebM. HEVC is tagged ``hvc1`` (what Apple
devices write and Safari needs). Encoders run fast presets (x264 superfast, x265 ultrafast, libvpx-vp9
realtime with row multithreading) so that a 10-minute source is made in minutes. Files are cached
beside the lecture (bench/lecture_source.py's cache directory) under names that carry the parameters.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.lecture_source import CACHE_DIR, lecture_source

CODECS = ("h264", "hevc", "vp9")
BITRATES = ("lecture", "phone")
FPS = 30
LECTURE_GOP = 4 * FPS  # bench/lecture_source.py: keyframes every 4 s
PHONE_GOP = FPS  # phones write a keyframe about every second
PHONE_NOISE = "noise=c0s=6:c0f=t"  # sensor noise, luma only (half the filter's cost of all planes)


@dataclass(frozen=True)
class Variant:
    codec: str
    bitrate: str

    @property
    def container(self) -> str:
        return "webm" if self.codec == "vp9" else "mp4"

    @property
    def faststart(self) -> bool:
        """Lecture-bitrate files keep the lecture's faststart index; phone files have it at the end."""
        return self.bitrate == "lecture"

    def video_options(self) -> list[str]:
        gop = PHONE_GOP if self.bitrate == "phone" else LECTURE_GOP
        if self.codec == "h264":
            # Only phone H.264 is encoded (lecture H.264 is the lecture itself).
            return ["-c:v", "libx264", "-preset", "superfast", "-profile:v", "high", "-b:v", "16M",
                    "-maxrate", "20M", "-bufsize", "32M", "-g", str(gop), "-keyint_min", str(gop),
                    "-sc_threshold", "0"]  # fmt: skip
        if self.codec == "hevc":
            rate = ["-b:v", "8M", "-maxrate", "10M", "-bufsize", "16M"] if self.bitrate == "phone" else ["-crf", "21"]
            return ["-c:v", "libx265", "-preset", "ultrafast", *rate, "-tag:v", "hvc1",
                    "-x265-params", f"keyint={gop}:min-keyint={gop}:scenecut=0:log-level=error"]  # fmt: skip
        # libvpx's realtime rate control overshoots an average target on noise: constant rate for phones.
        rate = (["-b:v", "8M", "-minrate", "8M", "-maxrate", "8M"] if self.bitrate == "phone"
                else ["-crf", "30", "-b:v", "3M"])  # fmt: skip
        return ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1",
                "-threads", "2", *rate, "-g", str(gop), "-keyint_min", str(gop)]  # fmt: skip

    def audio_options(self) -> list[str]:
        codec = "libopus" if self.container == "webm" else "aac"
        return ["-c:a", codec, "-b:a", "128k", "-ac", "2", "-ar", "48000"]

    def file_name(self, lecture: Path) -> str:
        """The lecture's name plus every parameter that changes the bytes."""
        if self.codec == "h264" and self.bitrate == "lecture":
            return lecture.name
        gop = PHONE_GOP if self.bitrate == "phone" else LECTURE_GOP
        rate = {"h264": "16M", "hevc": "8M", "vp9": "8Mcbr"}[self.codec] if self.bitrate == "phone" else "q"
        noise = "-noise6" if self.bitrate == "phone" else ""
        index = "" if self.container == "webm" else ("-faststart" if self.faststart else "-moovend")
        return f"{lecture.stem}.{self.codec}-{self.bitrate}-{rate}-g{gop}{noise}{index}.{self.container}"

    def command(self, *, ffmpeg: str, lecture: Path, target: Path) -> list[str]:
        noise = ["-vf", f"{PHONE_NOISE},format=yuv420p"] if self.bitrate == "phone" else ["-pix_fmt", "yuv420p"]
        index = ["-movflags", "+faststart"] if self.faststart and self.container == "mp4" else []
        return [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(lecture),
                "-map", "0:v:0", "-map", "0:a:0", *noise, *self.video_options(), *self.audio_options(),
                "-map_metadata", "-1", *index, "-f", self.container, str(target)]  # fmt: skip


def derived_source(*, ffmpeg: str, seconds: int, codec: str, bitrate: str, cache_dir: Path = CACHE_DIR) -> Path:
    """The cached source of this codec and bitrate made from the ``seconds``-long 1080p30 lecture."""
    if codec not in CODECS or bitrate not in BITRATES:
        raise ValueError(f"unknown variant {codec}/{bitrate}")
    lecture = lecture_source(ffmpeg=ffmpeg, seconds=seconds, fps=FPS, cache_dir=cache_dir)
    variant = Variant(codec, bitrate)
    target = cache_dir / variant.file_name(lecture)
    if target.exists():
        return target
    tmp = target.with_name(f"{target.stem}.part{target.suffix}")
    subprocess.run(variant.command(ffmpeg=ffmpeg, lecture=lecture, target=tmp), check=True, timeout=4 * 3600)
    tmp.replace(target)
    return target
