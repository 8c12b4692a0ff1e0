"""Shaka Packager: CMAF segments written once, an HLS master and a static DASH MPD over them.

Protected versions are encrypted here with a raw key (docs/adr/0008): CBCS, no clear lead, PSSH
boxes for the configured protection systems in the MPD and the init segments, and an HLS EXT-X-KEY
naming our key endpoint. The key reaches the packager through a flag file, never its command line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from media_pipeline.ffmpeg import AUDIO_FILE, rung_file
from media_pipeline.ladder import GOP_SECONDS, Rung
from media_pipeline.layout import DASH_MANIFEST, HLS_MASTER

PROTECTION_SCHEME = "cbcs"
# hls.js plays sample-encrypted fMP4 only through EME, and picks the key system by KEYFORMAT; Shaka
# Packager writes "identity" for a raw key, which hls.js (and Safari) can only use for MPEG-TS.
CLEARKEY_KEYFORMAT = 'KEYFORMAT="org.w3.clearkey",KEYFORMATVERSIONS="1"'
_IDENTITY_KEYFORMAT = re.compile(r'KEYFORMAT="identity"')
# The provisional stream's video file (single_file_inputs); its audio is AUDIO_FILE, as in a full encode.
VIDEO_FILE = "video.mp4"


@dataclass(frozen=True)
class Encryption:
    """Raw-key encryption of one version. ``flag_file`` holds the key; ``key_uri`` goes in EXT-X-KEY."""

    flag_file: Path
    key_uri: str
    protection_systems: tuple[str, ...] = ("CommonSystem",)


def write_key_flag_file(path: Path, *, kid_hex: str, key_hex: str) -> Path:
    """The packager's --keys flag in a file only the worker can read (process lists show arguments)."""
    if not (re.fullmatch(r"[0-9a-f]{32}", kid_hex) and re.fullmatch(r"[0-9a-f]{32}", key_hex)):
        raise ValueError("key id and key must be 32 lowercase hex digits")
    path.touch(mode=0o600)
    path.write_text(f"--keys=label=:key_id={kid_hex}:key={key_hex}\n")
    return path


def hls_playlist_for_clearkey(text: str) -> str:
    """Name the W3C ClearKey key system on every EXT-X-KEY of a media playlist (see CLEARKEY_KEYFORMAT)."""
    return "\n".join(
        _IDENTITY_KEYFORMAT.sub(CLEARKEY_KEYFORMAT, line) if line.startswith("#EXT-X-KEY:") else line
        for line in text.split("\n")
    )


@dataclass(frozen=True)
class PackagerInputs:
    """The packager's stream descriptors, and whether they write numbered segments (one object per
    segment) or one fragmented MP4 per stream that players address with byte ranges."""

    streams: tuple[str, ...]
    segmented: bool


def ladder_inputs(*, work_dir: Path, rungs: list[Rung], has_audio: bool) -> PackagerInputs:
    """The encoded rungs and audio in ``work_dir``, as numbered CMAF segments (a full version)."""
    streams: list[str] = []
    for rung in rungs:
        name = f"video_{rung.name}"
        streams.append(
            f"in={work_dir / rung_file(rung)},stream=video,"
            f"init_segment={name}/init.mp4,segment_template={name}/$Number$.m4s,"
            f"playlist_name={name}.m3u8"
        )
    if has_audio:
        streams.append(
            f"in={work_dir / AUDIO_FILE},stream=audio,"
            "init_segment=audio/init.mp4,segment_template=audio/$Number$.m4s,"
            "playlist_name=audio.m3u8,hls_group_id=audio,hls_name=Audio"
        )
    return PackagerInputs(streams=tuple(streams), segmented=True)


def single_file_inputs(*, video: Path, audio: Path | None) -> PackagerInputs:
    """One fragmented MP4 per stream (``video.mp4``, ``audio.mp4``; fragments at the input's keyframes),
    HLS with byte ranges and an on-demand MPD: the provisional stream. ``video`` and ``audio`` may be
    the same file (the source)."""
    streams = [f"in={video},stream=video,output={VIDEO_FILE},playlist_name=video.m3u8"]
    if audio is not None:
        streams.append(
            f"in={audio},stream=audio,output={AUDIO_FILE},playlist_name=audio.m3u8,hls_group_id=audio,hls_name=Audio"
        )
    return PackagerInputs(streams=tuple(streams), segmented=False)


def package_command(*, packager: str, inputs: PackagerInputs, encryption: Encryption | None = None) -> list[str]:
    """Run with the output folder as the working directory: every URI in the manifests is relative.
    Segments are at least GOP_SECONDS long; an HLS master and a static DASH MPD go over them."""
    command = [
        packager,
        *inputs.streams,
        "--segment_duration", str(GOP_SECONDS),
        "--hls_playlist_type", "VOD",
        "--hls_master_playlist_output", HLS_MASTER,
        "--mpd_output", DASH_MANIFEST,
    ]  # fmt: skip
    if inputs.segmented:
        # With segment templates the packager writes a dynamic MPD unless told this is on-demand.
        command.append("--generate_static_live_mpd")
    if encryption is not None:
        command += [
            "--enable_raw_key_encryption",
            f"--flagfile={encryption.flag_file}",
            "--protection_scheme", PROTECTION_SCHEME,
            "--protection_systems", ",".join(encryption.protection_systems),
            "--clear_lead", "0",
            "--hls_key_uri", encryption.key_uri,
        ]  # fmt: skip
    return command
