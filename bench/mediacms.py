"""MediaCMS's published H.264 encode of one rung, rebuilt from its source for bench/ladder_quality.py.

Taken from mediacms-io/mediacms, ``files/helpers.py`` (``get_base_ffmpeg_command`` and
``produce_ffmpeg_commands``, read at commit 58fea1356077ae91d13c26bf9973da1331aa85ba), the CRF path
every video longer than ``CRF_ENCODING_NUM_SECONDS = 2`` takes:

- one ffmpeg process per rung, each decoding the source: ``-i SRC -c:v libx264``;
- ``-filter:v scale=<landscape W x H, force_original_aspect_ratio=decrease, force_divisible_by=2,
  flags=lanczos>,fps=fps=<source fps>`` and ``-pix_fmt yuv420p``;
- ``-crf 23`` (``VIDEO_CRFS["h264"]``);
- ``-maxrate`` and ``-bufsize`` both 1.5 x the rung's target rate (``MAX_RATE_MULTIPLIER`` and
  ``BUF_SIZE_MULTIPLIER``); target rates for sources up to 30 fps (``VIDEO_BITRATES["h264"][25]``):
  1080: 4500, 720: 2500, 480: 1000, 360: 500, 240: 300 kbit/s;
- ``-force_key_frames expr:gte(t,n_forced*4)`` and ``-x264-params keyint=<8 s>:keyint_min=<4 s>``
  (``KEYFRAME_DISTANCE = 4``);
- ``-preset medium`` (``X26x_PRESET``), except ``faster`` (``X26x_PRESET_BIG_HEIGHT``) for rungs of
  720 lines and more: the issue says "preset medium", MediaCMS's code says medium below 720p only;
- ``-profile:v main -level 4.2 -strict -2``; audio (AAC 128k stereo) in the same command.

Here the audio is left out (``-an``; ours is compared video-only too) and the command gains
``-nostdin -hide_banner -loglevel error``, which change nothing in the encode.
"""

from __future__ import annotations

from pathlib import Path

CRF = 23
MAX_RATE_MULTIPLIER = 1.5
BUF_SIZE_MULTIPLIER = 1.5
KEYFRAME_SECONDS = 4
PRESET = "medium"
PRESET_BIG_HEIGHT = "faster"
TARGET_KBPS = {240: 300, 360: 500, 480: 1000, 720: 2500, 1080: 4500}  # sources up to 30 fps


def preset_for(height: int) -> str:
    return PRESET_BIG_HEIGHT if height >= 720 else PRESET


def rung_command(
    *, ffmpeg: str, source: Path, output: Path, height: int, fps: int, crf: int = CRF, preset: str | None = None
) -> list[str]:
    """The encode of the ``height`` rung; ``crf`` and ``preset`` vary only for the rate-distortion
    sweep and the preset experiment (``None``: MediaCMS's own rule)."""
    target = TARGET_KBPS[height]
    width = round(height * 16 / 9)
    scale = (
        f"scale=if(lt(iw\\,ih)\\,{height}\\,{width}):if(lt(iw\\,ih)\\,{width}\\,{height})"
        ":force_original_aspect_ratio=decrease:force_divisible_by=2:flags=lanczos"
    )
    keyframes = fps * KEYFRAME_SECONDS
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-i", str(source), "-c:v", "libx264",
        "-filter:v", f"{scale},fps=fps={fps}", "-pix_fmt", "yuv420p",
        "-crf", str(crf), "-an",
        "-maxrate", f"{int(target * MAX_RATE_MULTIPLIER)}k", "-bufsize", f"{int(target * BUF_SIZE_MULTIPLIER)}k",
        "-force_key_frames", f"expr:gte(t,n_forced*{KEYFRAME_SECONDS})",
        "-x264-params", f"keyint={keyframes * 2}:keyint_min={keyframes}",
        "-preset", preset or preset_for(height), "-profile:v", "main", "-level", "4.2",
        "-strict", "-2", str(output),
    ]  # fmt: skip
