"""Media pipeline workflow: upload, probe, transcode (encode + package + poster), publish.

Each step claims the asset with a compare-and-set update and does nothing if it loses; the
next step is enqueued only after the transaction commits. See docs/adr/0002.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from media_pipeline import content_keys, extras, layout, replication, storage
from media_pipeline import selectors as media_selectors
from media_pipeline.errors import InputRejected, PermanentError
from media_pipeline.ffmpeg import (
    cover_poster_command,
    encode_command,
    poster_command,
    run_with_progress,
    waveform_poster_command,
)
from media_pipeline.ladder import Rung, plan_ladder
from media_pipeline.metrics import ASSET_FAILURES
from media_pipeline.models import AssetStatus, AssetTextTrack, ContentKey, MediaAsset, ResumableUpload, UploadStatus
from media_pipeline.packager import Encryption, hls_playlist_for_clearkey, package_command, write_key_flag_file
from media_pipeline.probe import probe_file
from media_pipeline.text_tracks import TextTrack, tracks_digest
from media_pipeline.tools import ToolFailed, run_tool

logger = logging.getLogger(__name__)
asset_delete = replication.asset_delete

INDEX_NAME = "files.json"
PROGRESS_EVERY_SECONDS = 2.0


class EmptyUpload(InputRejected):
    pass


# --- Upload ---------------------------------------------------------------------------------------


@transaction.atomic
def asset_create(*, key_prefix: str, protected: bool = False, text_tracks: list[TextTrack] | None = None) -> MediaAsset:
    asset = MediaAsset.objects.create(key_prefix=key_prefix.strip("/"), protected=protected)
    _text_tracks_store(asset.pk, text_tracks or [])
    return asset


def asset_upload_source(
    *, asset: MediaAsset, stream: IO[bytes], source_name: str, protected: bool | None = None
) -> MediaAsset:
    """Stream an uploaded original to storage and start processing it after commit.

    A new upload builds the next version; the version already published keeps playing. ``protected``
    (when given) decides whether the versions built from now on are encrypted.
    """
    key = layout.source_key(asset_public_id=str(asset.public_id), upload_id=uuid.uuid4().hex)
    written = storage.save_stream(key=key, stream=stream)
    if written == 0:
        storage.delete_prefix(key)
        raise EmptyUpload("the file is empty")
    return asset_attach_source(asset=asset, key=key, size=written, source_name=source_name, protected=protected)


def asset_attach_source(
    *, asset: MediaAsset, key: str, size: int, source_name: str, protected: bool | None = None
) -> MediaAsset:
    """Make the object at ``key`` (already whole in storage) the asset's original and start
    processing it after commit. Both upload paths (a form post, a finished resumable upload)
    end here, so each upload starts the pipeline once. ``protected`` as for asset_upload_source.
    """
    MediaAsset.objects.filter(pk=asset.pk).update(
        source_key=key,
        source_name=source_name[:255],
        source_size=size,
        status=AssetStatus.UPLOADED,
        failure_reason="",
        progress=0,
        building_version=F("building_version") + 1,
        updated_at=timezone.now(),
        **({} if protected is None else {"protected": protected}),
    )
    asset.refresh_from_db()
    asset_id = asset.pk
    transaction.on_commit(lambda: _enqueue("probe_asset", asset_id))
    return asset


@transaction.atomic
def asset_set_protected(*, asset: MediaAsset, protected: bool) -> bool:
    """Encrypt (or stop encrypting) the asset's versions; True when a new version is being built for it.

    A published version is immutable, so a change builds the next version from the stored original.
    Made protected, the asset stops serving its clear published version at once (a provisional one
    too): it is withdrawn and deleted, and the lesson is not playable until the encrypted version is
    published (docs/security.md). Made unprotected, the encrypted version keeps playing until the clear
    one replaces it. An asset still in the pipeline picks the flag up when it is packaged; a version
    packaged in the clear before the switch is never published for a protected asset (asset_publish).
    """
    changed = MediaAsset.objects.filter(pk=asset.pk).exclude(protected=protected).update(protected=protected)
    if not changed:
        return False
    row = MediaAsset.objects.select_for_update().get(pk=asset.pk)
    rebuild = _rebuild_from_original(asset.pk, from_states=[AssetStatus.READY, AssetStatus.FAILED])
    if protected and row.published_version is not None and row.published_kid is None:
        withdrawn = MediaAsset.objects.filter(pk=asset.pk)
        # READY needs a published version; one that cannot be rebuilt (never probed) waits for an upload.
        withdrawn.filter(status=AssetStatus.READY).update(
            status=AssetStatus.FAILED, failure_reason="upload the video again to publish it protected"
        )
        withdrawn.update(
            published_version=None, published_provisional=False, published_extras={}, updated_at=timezone.now()
        )
        replication.version_withdraw(asset=row, version=row.published_version)
    asset.refresh_from_db()
    return rebuild


def _rebuild_from_original(asset_id: int, *, from_states: list[str], version: int | None = None) -> bool:
    """Build the next version from the stored original (probe and ladder kept); True when started."""
    rows = MediaAsset.objects.filter(pk=asset_id, status__in=from_states, probe__has_key="duration")
    if version is not None:
        rows = rows.filter(building_version=version)
    rebuild = rows.update(
        status=AssetStatus.PROBED,
        failure_reason="",
        progress=0,
        building_version=F("building_version") + 1,
        updated_at=timezone.now(),
    )
    if rebuild:
        transaction.on_commit(lambda: _enqueue("transcode_asset", asset_id))
    return bool(rebuild)


def asset_set_text_tracks(*, asset: MediaAsset, tracks: list[TextTrack]) -> bool:
    """Give the asset's versions these captions and chapters; True when a new version is being built.

    A published version is immutable (ADR 0002), so a change builds the next version; while only text
    tracks differ, that version copies the published one's segments instead of encoding (see
    _derive_version and docs/adr/0013-text-tracks-by-derived-versions.md). An asset still in the
    pipeline picks the tracks up when its manifests are written; should they change after that, the
    publish step notices and derives once more.
    """
    with transaction.atomic():
        MediaAsset.objects.select_for_update().filter(pk=asset.pk).first()  # one change at a time
        if asset_text_tracks(asset_id=asset.pk) == list(tracks):
            return False
        _text_tracks_store(asset.pk, tracks)
        rebuilding = _rebuild_for_text_tracks(asset.pk)
    asset.refresh_from_db()
    return rebuilding


def asset_text_tracks(*, asset_id: int) -> list[TextTrack]:
    rows = AssetTextTrack.objects.filter(asset_id=asset_id).order_by("position")
    return [TextTrack(kind=r.kind, language=r.language, label=r.label, vtt=r.vtt) for r in rows]


def _text_tracks_store(asset_id: int, tracks: list[TextTrack]) -> None:
    AssetTextTrack.objects.filter(asset_id=asset_id).delete()
    AssetTextTrack.objects.bulk_create(
        AssetTextTrack(asset_id=asset_id, position=index, **track.as_dict()) for index, track in enumerate(tracks)
    )


def _rebuild_for_text_tracks(asset_id: int) -> bool:
    rebuild = MediaAsset.objects.filter(
        pk=asset_id, status__in=[AssetStatus.READY, AssetStatus.FAILED], probe__has_key="duration"
    ).update(
        status=AssetStatus.PROBED,
        failure_reason="",
        progress=0,
        building_version=F("building_version") + 1,
        updated_at=timezone.now(),
    )
    if rebuild:
        transaction.on_commit(lambda: _enqueue("transcode_asset", asset_id))
    return bool(rebuild)


def _enqueue(actor_name: str, asset_id: int) -> None:
    from media_pipeline import actors  # imported late: actors import this module

    try:
        getattr(actors, actor_name).send(asset_id)
    except Exception:  # noqa: BLE001 - the row is committed; the broker being down must not lose the upload
        logger.exception(
            "asset %s: could not enqueue %s; `manage.py pipeline_resume` will pick it up", asset_id, actor_name
        )


# The step that moves an asset on from each state; running states are retried when stale.
NEXT_STEP = {
    AssetStatus.UPLOADED: "probe_asset",
    AssetStatus.PROBING: "probe_asset",
    AssetStatus.PROVISIONAL: "provisional_asset",
    AssetStatus.PROBED: "transcode_asset",
    AssetStatus.TRANSCODING: "transcode_asset",
    AssetStatus.TRANSCODED: "publish_asset",
}


def assets_resume_stalled(*, idle_for: timedelta) -> list[int]:
    """Enqueue the next step again for assets that have not moved for ``idle_for``.

    Covers a broker that was down when a step was enqueued, and a worker that died so long ago
    that its message is gone. A step that is in fact still queued runs once and the duplicate
    loses the compare-and-set, so this is safe to run at any time (e.g. from cron).
    """
    cutoff = timezone.now() - idle_for
    stalled = list(
        MediaAsset.objects.filter(status__in=list(NEXT_STEP), updated_at__lt=cutoff)
        # An asset whose first (resumable) upload is still arriving has no source to probe yet.
        .exclude(status=AssetStatus.UPLOADED, source_key="")
        .values_list("pk", "status")
    )
    for asset_id, status in stalled:
        _enqueue(NEXT_STEP[status], asset_id)
    return [asset_id for asset_id, _ in stalled]


# --- Steps ------------------------------------------------------------------------------------------


def _claim(asset_id: int, *, from_states: list[str], to_state: str) -> MediaAsset | None:
    """Compare-and-set the asset into ``to_state``; None when another worker or a newer upload won."""
    claimed = MediaAsset.objects.filter(pk=asset_id, status__in=from_states).update(
        status=to_state, attempts=F("attempts") + 1, updated_at=timezone.now()
    )
    if claimed != 1:
        logger.info("asset %s: step %s skipped (state changed)", asset_id, to_state)
        return None
    return MediaAsset.objects.get(pk=asset_id)


_STEP_OF_STATE = {AssetStatus.PROBING: "probe", AssetStatus.TRANSCODING: "transcode", AssetStatus.TRANSCODED: "publish"}


def _fail(asset: MediaAsset, *, in_state: str, reason: str) -> None:
    logger.warning("asset %s failed: %s", asset.pk, reason)
    failed = MediaAsset.objects.filter(pk=asset.pk, status=in_state, building_version=asset.building_version).update(
        status=AssetStatus.FAILED, failure_reason=reason[:1000], progress=0, updated_at=timezone.now()
    )
    if failed:
        ASSET_FAILURES.labels(_STEP_OF_STATE.get(in_state, "other")).inc()


def _work_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="media-", dir=settings.MEDIA_WORK_DIR)


def asset_probe(*, asset_id: int) -> None:
    asset = _claim(asset_id, from_states=[AssetStatus.UPLOADED, AssetStatus.PROBING], to_state=AssetStatus.PROBING)
    if asset is None:
        return
    with _work_dir() as tmp:
        source = Path(tmp) / "source"
        storage.download(key=asset.source_key, target=source)
        try:
            result = probe_file(ffprobe=settings.FFPROBE_BIN, path=source)
        except InputRejected as exc:
            _fail(asset, in_state=AssetStatus.PROBING, reason=f"rejected: {exc}")
            return
    # A sound-only lesson has no video ladder: only its audio rendition is encoded and packaged.
    rungs = plan_ladder(width=result.width, height=result.height, fps=result.fps) if result.has_video else []
    # A new upload of a lesson that is not protected plays first as a provisional stream (provisional.py).
    # A sound-only lesson needs none: its full version is one audio encode, ready about as soon.
    provisional_first = settings.MEDIA_PROVISIONAL and not asset.protected and result.has_video
    with transaction.atomic():
        moved = MediaAsset.objects.filter(
            pk=asset.pk, status=AssetStatus.PROBING, building_version=asset.building_version
        ).update(
            status=AssetStatus.PROVISIONAL if provisional_first else AssetStatus.PROBED,
            probe=result.as_dict(),
            ladder=[rung.as_dict() for rung in rungs],
            duration_seconds=result.duration,
            width=result.width or None,  # none for a sound-only lesson
            height=result.height or None,
            updated_at=timezone.now(),
        )
        if moved == 1:
            next_step = "provisional_asset" if provisional_first else "transcode_asset"
            transaction.on_commit(lambda: _enqueue(next_step, asset.pk))


def asset_transcode(*, asset_id: int) -> None:
    from media_pipeline import chunk_services  # imported late: it builds on this module

    asset = _claim(
        asset_id, from_states=[AssetStatus.PROBED, AssetStatus.TRANSCODING], to_state=AssetStatus.TRANSCODING
    )
    if asset is None:
        return
    prefix = asset.version_prefix(asset.building_version)
    if not _index_complete(prefix):
        try:
            reusable = _reusable_published_prefix(asset)
            if reusable is not None:
                _derive_version(asset, source_prefix=reusable, prefix=prefix)
            elif chunk_services.wants_chunks(asset):
                # Long source: chunks on many workers; the join moves the asset on (docs/adr/0016).
                chunk_services.chunked_build_start(asset=asset)
                return
            else:
                _build_version(asset, prefix)
        except ToolFailed as exc:
            _fail(asset, in_state=AssetStatus.TRANSCODING, reason=f"encoding failed: {exc}")
            return
    with transaction.atomic():
        moved = MediaAsset.objects.filter(
            pk=asset.pk, status=AssetStatus.TRANSCODING, building_version=asset.building_version
        ).update(status=AssetStatus.TRANSCODED, progress=100, updated_at=timezone.now())
        if moved == 1:
            transaction.on_commit(lambda: _enqueue("publish_asset", asset.pk))


def _build_version(asset: MediaAsset, prefix: str) -> None:
    probe = asset.probe
    rungs = [Rung(**rung) for rung in asset.ladder]
    with _work_dir() as tmp:
        work = Path(tmp)
        source, encoded = work / "source", work / "encoded"
        encoded.mkdir()
        storage.download(key=asset.source_key, target=source)
        run_with_progress(
            encode_command(
                ffmpeg=settings.FFMPEG_BIN,
                source=source,
                out_dir=encoded,
                rungs=rungs,
                source_fps=float(probe["fps"]),
                has_audio=bool(probe["has_audio"]),
                preset=settings.ENCODE_PRESET,
                threads=settings.ENCODE_THREADS,
                interlaced=bool(probe.get("interlaced", False)),
            ),
            duration=float(probe["duration"]),
            timeout=settings.ENCODE_TIMEOUT_SECONDS,
            on_progress=_progress_writer(asset),
            every_seconds=PROGRESS_EVERY_SECONDS,
            work_dir=work,
        )
        _package_and_upload(asset, prefix, work=work, encoded=encoded, poster_source=source)


def _package_and_upload(asset: MediaAsset, prefix: str, *, work: Path, encoded: Path, poster_source: Path) -> None:
    """Package the encoded rungs and audio in ``encoded`` (encrypted when the asset is protected), add
    the poster (from ``poster_source``), storyboard and text tracks, and upload the version, index last.
    Shared by the one-process encode and the join of a chunked one (chunk_services)."""
    probe = asset.probe
    rungs = [Rung(**rung) for rung in asset.ladder]
    out = work / "out"
    out.mkdir(exist_ok=True)
    encryption = None
    if asset.protected:
        material = _content_key_for(asset, version=asset.building_version)
        encryption = Encryption(
            # In the work folder, removed with it; the key never reaches storage.
            flag_file=write_key_flag_file(work / "keys.flags", kid_hex=material.kid_hex, key_hex=material.key_hex),
            key_uri=settings.DRM_HLS_KEY_URI.format(kid=material.kid_hex),
            protection_systems=tuple(settings.DRM_PROTECTION_SYSTEMS),
        )
    _run_in(
        out,
        package_command(
            packager=settings.PACKAGER_BIN,
            work_dir=encoded,
            rungs=rungs,
            has_audio=bool(probe["has_audio"]),
            encryption=encryption,
        ),
    )
    if encryption is not None:
        for playlist in out.glob("*.m3u8"):
            playlist.write_text(hls_playlist_for_clearkey(playlist.read_text()))
    _write_poster(probe, rungs=rungs, source=poster_source, target=out / layout.POSTER)
    extras.write_storyboard(encoded=encoded, out=out, rungs=rungs, duration=float(probe["duration"]))
    extras.write_text_tracks(out=out, tracks=asset_text_tracks(asset_id=asset.pk), duration=float(probe["duration"]))
    _upload_version(out, prefix, meta=_version_meta(asset))


def _write_poster(probe: dict, *, rungs: list[Rung], source: Path, target: Path) -> None:
    """A frame of the video; for a sound-only lesson its cover picture, or else its waveform."""
    if rungs:
        command = poster_command(
            ffmpeg=settings.FFMPEG_BIN,
            source=source,
            target=target,
            at_seconds=min(5.0, float(probe["duration"]) / 3),
            max_height=720,
            interlaced=bool(probe.get("interlaced", False)),
        )
    elif probe.get("cover_art"):
        command = cover_poster_command(ffmpeg=settings.FFMPEG_BIN, source=source, target=target, max_height=720)
    else:
        command = waveform_poster_command(ffmpeg=settings.FFMPEG_BIN, source=source, target=target)
    # A waveform decodes the whole recording (about a thousand times real time): a longer limit.
    run_tool(command, timeout=120 if rungs or probe.get("cover_art") else 600, work_dir=target.parent)


def _version_meta(asset: MediaAsset) -> dict[str, object]:
    fingerprint = extras.media_fingerprint(source_key=asset.source_key, ladder=asset.ladder, protected=asset.protected)
    return extras.version_meta(
        fingerprint=fingerprint, tracks=asset_text_tracks(asset_id=asset.pk), has_storyboard=bool(asset.ladder)
    )


def _reusable_published_prefix(asset: MediaAsset) -> str | None:
    """The published version's prefix when its segments are what this build would encode again (same
    source, ladder and protection: only text tracks changed). Encrypted versions are always encoded:
    a content key belongs to one version (ContentKey), and sharing one is not worth a caption."""
    if asset.published_version is None or asset.protected or asset.published_kid is not None:
        return None
    prefix = asset.version_prefix(asset.published_version)
    meta = _read_meta(prefix)
    if meta.get("media") != _version_meta(asset)["media"]:
        return None
    if asset.ladder and "storyboard" not in meta.get("extras", {}):  # published before storyboards
        return None
    return prefix


def _derive_version(asset: MediaAsset, *, source_prefix: str, prefix: str) -> None:
    """A new version that differs from the published one only in its text tracks: every segment, init
    segment, media playlist, poster and storyboard copied inside storage (no download, no encode), the
    two manifests and the text tracks written afresh."""
    index = _read_index(source_prefix) or {}
    copied: dict[str, dict[str, object]] = {}
    with _work_dir() as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        for name, meta in index.items():
            if extras.is_text_track_file(name):
                continue
            storage.copy(source_key=source_prefix + name, target_key=prefix + name)
            copied[name] = meta
        for name in (layout.HLS_MASTER, layout.DASH_MANIFEST):
            storage.download(key=source_prefix + name, target=out / name)
        extras.write_text_tracks(
            out=out, tracks=asset_text_tracks(asset_id=asset.pk), duration=float(asset.probe["duration"])
        )
        _upload_version(out, prefix, meta=_version_meta(asset), copied=copied)


def _content_key_for(asset: MediaAsset, *, version: int) -> content_keys.ContentKeyMaterial:
    """The version's content key, made on first use: a rerun of the same version reuses it, so segments
    packaged by an interrupted attempt and by the rerun share one key."""
    secrets = media_selectors.content_key_secrets()
    fresh = content_keys.generate()
    row, _ = ContentKey.objects.get_or_create(
        asset=asset,
        version=version,
        defaults={
            "kid": fresh.kid,
            "key_sealed": content_keys.seal(fresh, secret=secrets[0], asset_id=asset.pk, version=version),
        },
    )
    material, _ = content_keys.open_sealed_any(
        row.key_sealed, kid=row.kid, secrets=secrets, asset_id=asset.pk, version=version
    )
    return material


def content_keys_reseal() -> tuple[int, int]:
    """Seal every stored content key with the current CONTENT_KEY_SECRET (`manage.py
    content_keys_reseal`); returns (keys checked, keys re-sealed). Raises KeyUnreadable, before changing
    anything, when a key opens with no configured secret. Compare-and-set per row: a rerun, or a key
    written meanwhile, is left as it is."""
    secrets = media_selectors.content_key_secrets()
    resealed: list[tuple[int, str, str]] = []
    rows = list(ContentKey.objects.order_by("pk").values_list("pk", "asset_id", "version", "kid", "key_sealed"))
    for pk, asset_id, version, kid, sealed in rows:
        material, index = content_keys.open_sealed_any(
            sealed, kid=kid, secrets=secrets, asset_id=asset_id, version=version
        )
        if index:
            resealed.append(
                (pk, sealed, content_keys.seal(material, secret=secrets[0], asset_id=asset_id, version=version))
            )
    changed = 0
    for pk, old, new in resealed:
        changed += ContentKey.objects.filter(pk=pk, key_sealed=old).update(key_sealed=new)
    return len(rows), changed


def _run_in(directory: Path, command: list[str]) -> None:
    # The packager writes relative URIs when it runs inside the output folder.
    run_tool(command, cwd=directory, timeout=settings.ENCODE_TIMEOUT_SECONDS, label="packager")


def _progress_writer(asset: MediaAsset) -> Callable[[int], None]:
    def write(percent: int) -> None:
        # updated_at too: a long encode that reports progress is alive, and pipeline_resume (which
        # re-sends steps idle for a while) must not start a second encode of the same version.
        MediaAsset.objects.filter(pk=asset.pk, status=AssetStatus.TRANSCODING).update(
            progress=percent, updated_at=timezone.now()
        )

    return write


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _upload_version(
    out: Path,
    prefix: str,
    *,
    meta: dict[str, object] | None = None,
    copied: dict[str, dict[str, object]] | None = None,
) -> None:
    """Upload every file, then the index last: an index means the version is complete. ``copied``
    lists objects already placed under ``prefix`` (with their index entries); ``meta`` goes in the index."""
    index: dict[str, dict[str, object]] = dict(copied or {})
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        name = path.relative_to(out).as_posix()
        digest = _sha256(path)
        storage.save_file(key=prefix + name, source=path, sha256=digest)
        index[name] = {"size": path.stat().st_size, "sha256": digest}
    index_path = out.parent / INDEX_NAME
    body: dict[str, object] = {"files": index} if meta is None else {"files": index, "meta": meta}
    index_path.write_text(json.dumps(body, indent=1, sort_keys=True))
    storage.save_file(key=prefix + INDEX_NAME, source=index_path, sha256=_sha256(index_path))


def _read_index(prefix: str) -> dict[str, dict[str, object]] | None:
    if not storage.exists(prefix + INDEX_NAME):
        return None
    return json.loads(storage.read_bytes(prefix + INDEX_NAME))["files"]


def _read_meta(prefix: str) -> dict:
    """The index's description of the version (media fingerprint, text tracks, extras); {} when older."""
    if not storage.exists(prefix + INDEX_NAME):
        return {}
    return json.loads(storage.read_bytes(prefix + INDEX_NAME)).get("meta", {})


def _index_complete(prefix: str) -> bool:
    index = _read_index(prefix)
    if index is None:
        return False
    return all(
        storage.exists(prefix + name) and storage.size(prefix + name) == meta["size"] for name, meta in index.items()
    )


def asset_publish(*, asset_id: int) -> None:
    asset = MediaAsset.objects.get(pk=asset_id)
    if asset.status != AssetStatus.TRANSCODED:
        return
    version = asset.building_version
    prefix = asset.version_prefix(version)
    index = _read_index(prefix) or {}
    required = {layout.HLS_MASTER, layout.DASH_MANIFEST, layout.POSTER}
    if asset.ladder:  # every version with pictures has scrub previews
        required |= {layout.STORYBOARD_SPRITE, layout.STORYBOARD_TRACK}
    missing = sorted(required - index.keys()) + sorted(
        name
        for name, meta in index.items()
        if not storage.exists(prefix + name) or storage.size(prefix + name) != meta["size"]
    )
    if missing:
        _fail(asset, in_state=AssetStatus.TRANSCODED, reason=f"publishing failed: missing {', '.join(missing[:5])}")
        return
    # The one flip: from here on players are given the new version's URLs. The same transaction
    # records the version per region (complete in the primary) and retires the one it replaces.
    kid = ContentKey.objects.filter(asset=asset, version=version).values_list("kid", flat=True).first()
    meta = _read_meta(prefix)
    with transaction.atomic():
        current = MediaAsset.objects.filter(pk=asset.pk, status=AssetStatus.TRANSCODED, building_version=version)
        # A clear version is published only while the asset is not protected: the condition is part of
        # the flip, so a switch to protected committed a moment earlier wins (asset_set_protected).
        flipped = (current if kid is not None else current.filter(protected=False)).update(
            status=AssetStatus.READY,
            published_version=version,
            published_provisional=False,
            published_kid=kid,
            published_extras=meta.get("extras", {}),
            published_at=timezone.now(),
            progress=100,
            updated_at=timezone.now(),
        )
        if flipped == 1:
            replication.replicas_record_published(
                asset=asset, version=version, previous_version=asset.published_version
            )
            _text_tracks_catch_up(asset.pk, published_digest=meta.get("text_tracks"))
            replaced = ResumableUpload.objects.filter(asset=asset, status=UploadStatus.COMPLETED).exclude(
                storage_key=asset.source_key
            )
            if replaced.exists():
                asset_id = asset.pk
                transaction.on_commit(lambda: _collect_replaced_originals_quietly(asset_id))
        elif kid is None and _rebuild_from_original(asset.pk, from_states=[AssetStatus.TRANSCODED], version=version):
            # Packaged in the clear before the lesson was made protected: never served, built again.
            transaction.on_commit(lambda: storage.delete_prefix(prefix))


def asset_collect_replaced_originals(*, asset_id: int) -> int:
    """Delete the originals a newer upload replaced, once nothing can need them; returns how many.

    That is when the asset is READY with the version built last published: every build of a replaced
    original has ended (a new upload starts a new build and leaves READY), and what a later rebuild
    reads (protection, captions) is the current original. Originals live in the primary region only.
    The row lock keeps a new upload from making another original current meanwhile. Only originals
    recorded as uploads are collected; the rest go with the video (asset_delete).
    """
    with transaction.atomic():
        asset = MediaAsset.objects.select_for_update().filter(pk=asset_id, status=AssetStatus.READY).first()
        if asset is None or asset.published_version != asset.building_version or not asset.source_key:
            return 0
        replaced = list(
            ResumableUpload.objects.filter(asset=asset, status=UploadStatus.COMPLETED).exclude(
                storage_key=asset.source_key
            )
        )
        for upload in replaced:
            # Deleted before the row says so: a failure leaves the original counted, never uncounted.
            storage.delete_prefix(upload.storage_key)
        ResumableUpload.objects.filter(pk__in=[upload.pk for upload in replaced]).update(
            status=UploadStatus.DISCARDED, updated_at=timezone.now()
        )
    if replaced:
        logger.info("asset %s: deleted %s replaced original(s)", asset_id, len(replaced))
    return len(replaced)


def _collect_replaced_originals_quietly(asset_id: int) -> None:
    try:
        asset_collect_replaced_originals(asset_id=asset_id)
    except Exception:  # noqa: BLE001 - publishing succeeded; uploads_sweep tries again
        logger.exception("asset %s: could not delete its replaced originals", asset_id)


def _text_tracks_catch_up(asset_id: int, *, published_digest: object) -> None:
    """Captions changed while the version just published was being built: derive one more."""
    if tracks_digest(asset_text_tracks(asset_id=asset_id)) != published_digest:
        _rebuild_for_text_tracks(asset_id)


def asset_wait(*, asset_id: int, timeout: float, poll_seconds: float = 0.5) -> MediaAsset:
    """Block until the asset is ready or failed; raise TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        asset = MediaAsset.objects.get(pk=asset_id)
        if asset.status in (AssetStatus.READY, AssetStatus.FAILED):
            return asset
        if time.monotonic() >= deadline:
            raise TimeoutError(f"asset {asset_id} still {asset.status} after {timeout:.0f} s")
        time.sleep(poll_seconds)


__all__ = [
    "PermanentError",
    "asset_create",
    "asset_upload_source",
    "asset_set_protected",
    "asset_set_text_tracks",
    "asset_text_tracks",
    "asset_probe",
    "asset_transcode",
    "asset_publish",
    "asset_wait",
    "assets_resume_stalled",
    "asset_delete",
]
