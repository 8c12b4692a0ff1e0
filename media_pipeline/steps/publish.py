"""The publish step: the one flip that makes the version built last the one players get
(transcoded -> ready), after checking every object of its index is in storage."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from media_pipeline import layout, replication, storage, versions, workflow
from media_pipeline import selectors as media_selectors
from media_pipeline.models import AssetStatus, ContentKey, MediaAsset, ResumableUpload, UploadStatus
from media_pipeline.text_tracks import tracks_digest

logger = logging.getLogger(__name__)


def asset_publish(*, asset_id: int) -> None:
    asset = MediaAsset.objects.get(pk=asset_id)
    if asset.status != AssetStatus.TRANSCODED:
        return
    version = asset.building_version
    prefix = asset.version_prefix(version)
    index = versions.read_index(prefix) or {}
    required = {layout.HLS_MASTER, layout.DASH_MANIFEST, layout.POSTER}
    if asset.ladder:  # every version with pictures has scrub previews
        required |= {layout.STORYBOARD_SPRITE, layout.STORYBOARD_TRACK}
    missing = sorted(required - index.keys()) + versions.missing_objects(prefix, index)
    if missing:
        reason = f"publishing failed: missing {', '.join(missing[:5])}"
        workflow.fail(asset.pk, version=version, in_state=AssetStatus.TRANSCODED, reason=reason)
        return
    # The one flip: from here on players are given the new version's URLs. The same transaction
    # records the version per region (complete in the primary) and retires the one it replaces.
    kid = ContentKey.objects.filter(asset=asset, version=version).values_list("kid", flat=True).first()
    meta = versions.read_meta(prefix)
    with transaction.atomic():
        now = timezone.now()
        flipped = workflow.advance(
            asset.pk,
            version=version,
            from_state=AssetStatus.TRANSCODED,
            to_state=AssetStatus.READY,
            # A clear version is published only while the asset is not protected: the condition is part
            # of the flip, so a switch to protected committed a moment earlier wins (asset_set_protected).
            when=None if kid is not None else Q(protected=False),
            published_version=version,
            published_provisional=False,
            published_kid=kid,
            published_extras=meta.get("extras", {}),
            published_at=now,
            progress=100,
        )
        if flipped:
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
        elif kid is None and workflow.rebuild(asset.pk, from_states=[AssetStatus.TRANSCODED], version=version):
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
    if tracks_digest(media_selectors.asset_text_tracks(asset_id=asset_id)) != published_digest:
        workflow.rebuild(asset_id, from_states=[AssetStatus.READY, AssetStatus.FAILED])
