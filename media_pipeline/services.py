"""The media pipeline's public API: what other apps (courses, playback) and the commands call.

Uploads start the pipeline; changes of protection or text tracks build the next version. The state
machine is media_pipeline.workflow, the version store media_pipeline.versions, and each step a module
of media_pipeline.steps (run by media_pipeline.actors). See docs/adr/0002.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import IO

from django.db import transaction
from django.utils import timezone

from media_pipeline import content_keys, layout, replication, storage, workflow
from media_pipeline import selectors as media_selectors
from media_pipeline.errors import InputRejected, PermanentError
from media_pipeline.models import AssetStatus, AssetTextTrack, ContentKey, MediaAsset
from media_pipeline.selectors import asset_text_tracks
from media_pipeline.steps.probe import asset_probe
from media_pipeline.steps.publish import asset_collect_replaced_originals, asset_publish
from media_pipeline.steps.transcode import asset_transcode
from media_pipeline.text_tracks import TextTrack
from media_pipeline.workflow import assets_resume_stalled

logger = logging.getLogger(__name__)
asset_delete = replication.asset_delete


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
    workflow.restart(
        asset.pk,
        source_key=key,
        source_name=source_name[:255],
        source_size=size,
        **({} if protected is None else {"protected": protected}),
    )
    asset.refresh_from_db()
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
    rebuild = workflow.rebuild(asset.pk, from_states=[AssetStatus.READY, AssetStatus.FAILED])
    if protected and row.published_version is not None and row.published_kid is None:
        # READY needs a published version; one that cannot be rebuilt (never probed) waits for an upload.
        workflow.withdraw(asset.pk, reason="upload the video again to publish it protected")
        MediaAsset.objects.filter(pk=asset.pk).update(
            published_version=None, published_provisional=False, published_extras={}, updated_at=timezone.now()
        )
        replication.version_withdraw(asset=row, version=row.published_version)
    asset.refresh_from_db()
    return rebuild


def asset_set_text_tracks(*, asset: MediaAsset, tracks: list[TextTrack]) -> bool:
    """Give the asset's versions these captions and chapters; True when a new version is being built.

    A published version is immutable (ADR 0002), so a change builds the next version; while only text
    tracks differ, that version copies the published one's segments instead of encoding (see
    steps.transcode and docs/adr/0013-text-tracks-by-derived-versions.md). An asset still in the
    pipeline picks the tracks up when its manifests are written; should they change after that, the
    publish step notices and derives once more.
    """
    with transaction.atomic():
        MediaAsset.objects.select_for_update().filter(pk=asset.pk).first()  # one change at a time
        if asset_text_tracks(asset_id=asset.pk) == list(tracks):
            return False
        _text_tracks_store(asset.pk, tracks)
        rebuilding = workflow.rebuild(asset.pk, from_states=[AssetStatus.READY, AssetStatus.FAILED])
    asset.refresh_from_db()
    return rebuilding


def _text_tracks_store(asset_id: int, tracks: list[TextTrack]) -> None:
    AssetTextTrack.objects.filter(asset_id=asset_id).delete()
    AssetTextTrack.objects.bulk_create(
        AssetTextTrack(asset_id=asset_id, position=index, **track.as_dict()) for index, track in enumerate(tracks)
    )


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
    "EmptyUpload",
    "PermanentError",
    "asset_attach_source",
    "asset_collect_replaced_originals",
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
    "content_keys_reseal",
]
