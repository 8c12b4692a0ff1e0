"""Reads other apps use: is an asset playable, and where its published version lives."""

from __future__ import annotations

import uuid
from typing import TypedDict

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from media_pipeline import content_keys, layout
from media_pipeline.models import (
    AssetTextTrack,
    ChunkedBuild,
    ChunkState,
    ContentKey,
    EncodeChunk,
    MediaAsset,
    ReplicaState,
    ResumableUpload,
    UploadStatus,
    VersionReplica,
)
from media_pipeline.regions import regions_all
from media_pipeline.text_tracks import TextTrack


class PlaybackInfo(TypedDict):
    prefix: str
    version: int
    hls: str
    dash: str
    poster: str
    duration: float | None
    regions: list[str]
    # Key id (32 hex digits) when the published version is encrypted, else None.
    kid: str | None
    # Storyboard, chapters and captions of the published version (file names); {} for older versions.
    extras: dict
    # The published version is a provisional stream; the full ladder is still being built.
    provisional: bool


def asset_playback_info(*, asset: MediaAsset | None) -> PlaybackInfo | None:
    """The published version's prefix and file names, or None when nothing is playable yet."""
    if asset is None or asset.published_prefix is None or asset.published_version is None:
        return None
    if asset.protected and asset.published_kid is None:
        # Never a clear version of a protected asset (asset_set_protected withdraws one; this holds even
        # for a row read before that commit).
        return None
    # Asked twice per playback request (entitlement, then signing): one query per asset instance.
    cached: PlaybackInfo | None = getattr(asset, "_playback_info", None)
    if cached is not None and cached["prefix"] == asset.published_prefix:
        return cached
    # A per-instance cache: the model declares no such field, by design.
    asset._playback_info = PlaybackInfo(  # type: ignore[attr-defined]
        prefix=asset.published_prefix,
        version=asset.published_version,
        hls=layout.HLS_MASTER,
        dash=layout.DASH_MANIFEST,
        poster=layout.POSTER,
        duration=asset.duration_seconds,
        regions=asset_complete_regions(asset=asset),
        kid=asset.published_kid.hex if asset.published_kid else None,
        extras=asset.published_extras or {},
        provisional=asset.published_provisional,
    )
    return asset._playback_info  # type: ignore[attr-defined]  # the per-instance cache set above


def asset_complete_regions(*, asset: MediaAsset) -> list[str]:
    """Regions holding the whole published version, verified, in configuration order (primary first)."""
    if asset.published_prefix is None:
        return []
    fetched = getattr(asset, PUBLISHED_REPLICA_STATES, None)
    if fetched is not None:
        return _complete(_states_from_sql(fetched))
    return version_complete_regions(prefix=asset.published_prefix)


def version_complete_regions(*, prefix: str) -> list[str]:
    """Regions holding the whole version under ``prefix``. A version published before its region rows
    existed counts as complete in the primary only."""
    return _complete(dict(VersionReplica.objects.filter(prefix=prefix).values_list("region", "state")))


def _complete(states: dict[str, str]) -> list[str]:
    return [
        region.name
        for region in regions_all()
        if states.get(region.name) == ReplicaState.COMPLETE or (region.primary and region.name not in states)
    ]


# The annotation name under which published_replica_states_sql()'s answer is fetched with an asset.
PUBLISHED_REPLICA_STATES = "published_replica_states"


def published_replica_states_sql(*, asset_table: str = MediaAsset._meta.db_table) -> tuple[str, list[str]]:
    """SQL for the states of the published version in every region, to fetch with the asset row.

    The playback session asks for them on every start; as part of the query that loads the lesson
    they cost no round trip of their own (bench/playback_session.py). The answer is one text value:
    each configured region's state, in configuration order, separated by commas (empty where the
    region has no row). ``asset_table`` is the asset table's name or alias in the outer query.
    """
    table = VersionReplica._meta.db_table
    prefix = f"""("{asset_table}".key_prefix || '/v' || CAST("{asset_table}".published_version AS TEXT) || '/')"""
    one = f"""COALESCE((SELECT r.state FROM "{table}" r WHERE r.prefix = {prefix} AND r.region = %s), '')"""
    names = [region.name for region in regions_all()]
    return " || ',' || ".join([one] * len(names)), names


def _states_from_sql(value: str) -> dict[str, str]:
    names = [region.name for region in regions_all()]
    return {name: state for name, state in zip(names, value.split(","), strict=False) if state}


def asset_replicas(*, asset: MediaAsset) -> list[VersionReplica]:
    """Every version of the asset in every region, newest version first, for the admin and the API."""
    rows = VersionReplica.objects.filter(asset=asset).exclude(state=ReplicaState.DELETED)
    return list(rows.order_by("-available_at", "prefix", "region"))


def content_key_get(*, asset: MediaAsset, version: int, kid: str) -> content_keys.ContentKeyMaterial | None:
    """The opened content key of one version when ``kid`` (32 hex digits) is that version's key id."""
    try:
        kid_value = uuid.UUID(hex=kid)
    except ValueError:
        return None
    row = ContentKey.objects.filter(asset=asset, version=version, kid=kid_value).first()
    if row is None:
        return None
    material, _ = content_keys.open_sealed_any(
        row.key_sealed, kid=row.kid, secrets=content_key_secrets(), asset_id=asset.pk, version=version
    )
    return material


def content_key_secrets() -> list[bytes]:
    """The secrets content keys open with: CONTENT_KEY_SECRET (the one that seals) first, then the
    retired ones (CONTENT_KEY_SECRET_OLD)."""
    return [secret.encode() for secret in (settings.CONTENT_KEY_SECRET, *settings.CONTENT_KEY_SECRETS_OLD)]


def asset_upload_running(*, asset: MediaAsset) -> bool:
    """Whether an upload to the asset may still bring its bytes: receiving and not expired (the sweep
    marks it expired later), or received and being assembled."""
    running = Q(status=UploadStatus.ACTIVE, expires_at__gt=timezone.now()) | Q(status=UploadStatus.COMPLETING)
    return ResumableUpload.objects.filter(running, asset=asset).exists()


def asset_chunks_done(*, asset: MediaAsset) -> tuple[int, int] | None:
    """(video chunks encoded, video chunks) of the version being built in chunks; None when it is not
    built in chunks (docs/adr/0016)."""
    build = ChunkedBuild.objects.filter(asset=asset, version=asset.building_version).first()
    if build is None:
        return None
    video = EncodeChunk.objects.filter(build=build, kind=EncodeChunk.Kind.VIDEO)
    return video.filter(state=ChunkState.DONE).count(), video.count()


def asset_text_tracks(*, asset_id: int) -> list[TextTrack]:
    """The asset's captions and chapters, in their order: what its next version is built with."""
    rows = AssetTextTrack.objects.filter(asset_id=asset_id).order_by("position")
    return [TextTrack(kind=r.kind, language=r.language, label=r.label, vtt=r.vtt) for r in rows]
