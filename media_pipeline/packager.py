"""Shaka Packager: CMAF segments written once, an HLS master and a static DASH MPD over them."""

from __future__ import annotations

from pathlib import Path

from media_pipeline.ffmpeg import AUDIO_FILE, rung_file
from media_pipeline.ladder import GOP_SECONDS, Rung
from media_pipeline.layout import DASH_MANIFEST, HLS_MASTER


def package_command(*, packager: str, work_dir: Path, rungs: list[Rung], has_audio: bool) -> list[str]:
    """Run with the output folder as the working directory: every URI in the manifests is relative."""
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
    return [
        packager,
        *streams,
        "--segment_duration", str(GOP_SECONDS),
        "--hls_playlist_type", "VOD",
        "--hls_master_playlist_output", HLS_MASTER,
        "--mpd_output", DASH_MANIFEST,
        # With segment templates the packager writes a dynamic MPD unless told this is on-demand.
        "--generate_static_live_mpd",
    ]  # fmt: skip
