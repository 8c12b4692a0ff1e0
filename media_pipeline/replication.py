"""Replication of published versions to every region, verification, and deletion everywhere.

The version index (``files.json``, written at publish with each object's size and SHA-256) is the
truth. A ``VersionReplica`` row per prefix and region records how far the copy is. Copying is
idempotent: a rerun lists the target, keeps what already matches and copies only the rest, the
index last, so an index in a region means the region holds the whole version. See docs/adr/0007.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core.leases import lapsed, lease_release, lease_renew, lease_take
from core.tasks import send_now
from media_pipeline import storage
from media_pipeline.errors import PermanentError
from media_pipeline.models import MediaAsset, ReplicaState, VersionReplica
from media_pipeline.regions import ObjectStore, Region, region_get, regions_all, store_for
from media_pipeline.versions import INDEX_NAME

logger = logging.getLogger(__name__)

LEASE_SECONDS = 5 * 60  # a copy renews its claim every 30 s; a dead worker's lapses after this
INDEX_LIMIT = 16 * 1024 * 1024
COPYABLE = [ReplicaState.PENDING, ReplicaState.DEGRADED, ReplicaState.COPYING]


class RegionUnavailable(Exception):
    """A region could not be read or written; retried with backoff."""


class NoGoodSource(PermanentError):
    """No region holds a verified copy to replicate from."""


@dataclass(frozen=True)
class Expected:
    size: int
    sha256: str


# --- Index ----------------------------------------------------------------------------------------


def _read_small(store: ObjectStore, key: str) -> bytes | None:
    info = store.head(key)
    if info is None:
        return None
    if info.size > INDEX_LIMIT:
        raise ValueError(f"{key} is {info.size} bytes, too large for an index")
    return b"".join(store.read(key))


def index_read(store: ObjectStore, prefix: str) -> dict[str, Expected] | None:
    """Every object of the version under ``prefix`` (the index itself included), or None."""
    raw = _read_small(store, prefix + INDEX_NAME)
    if raw is None:
        return None
    files = json.loads(raw)["files"]
    expected = {prefix + name: Expected(int(meta["size"]), str(meta["sha256"])) for name, meta in files.items()}
    expected[prefix + INDEX_NAME] = Expected(len(raw), hashlib.sha256(raw).hexdigest())
    return expected


def index_from_any(prefix: str, *, prefer: Iterable[Region]) -> tuple[Region, dict[str, Expected]]:
    for region in prefer:
        try:
            index = index_read(store_for(region), prefix)
        except Exception as exc:  # noqa: BLE001 - that region is down: try the next one
            logger.warning("index of %s unreadable in %s: %s", prefix, region.name, exc)
            continue
        if index is not None:
            return region, index
    raise NoGoodSource(f"no region holds the index of {prefix}")


# --- Copying one object ---------------------------------------------------------------------------


class _HashingReader:
    """A file-like view of a source object that hashes and counts what passes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read() if size < 0 else self._raw.read(size)
        # Fill to exactly `size` (or EOF): a short read would make a short multipart part.
        while 0 < size and data and len(data) < size:
            more = self._raw.read(size - len(data))
            if not more:
                break
            data += more
        self.digest.update(data)
        self.count += len(data)
        return data


class SourceCorrupt(Exception):
    pass


def copy_object(*, source: ObjectStore, target: ObjectStore, key: str, expected: Expected) -> None:
    """Copy one object and check it landed whole: size and SHA-256 against the index.

    Same store: a server-side copy (no bytes through us). Otherwise the bytes stream through,
    hashed on the way; a source whose bytes do not match the index is refused.
    """
    content_type = storage.content_type_for(key)
    if target.shares_store_with(source):
        info = source.head(key)
        if info is None or info.size != expected.size or info.sha256 not in (None, expected.sha256):
            raise SourceCorrupt(f"{key} missing or damaged in {source.region.name}")
        target.copy_within(source, key, sha256=expected.sha256, content_type=content_type)
    else:
        try:
            raw = source.open(key)
        except FileNotFoundError as exc:
            raise SourceCorrupt(str(exc)) from exc
        try:
            reader = _HashingReader(raw)
            target.put(key, reader, sha256=expected.sha256, content_type=content_type)
        finally:
            raw.close()
        if reader.count != expected.size or reader.digest.hexdigest() != expected.sha256:
            target.delete(key)
            raise SourceCorrupt(f"{key} in {source.region.name} does not match its checksum")
    landed = target.head(key)
    if landed is None or landed.size != expected.size or landed.sha256 not in (None, expected.sha256):
        raise RegionUnavailable(f"{key} did not land whole in {target.region.name}")


# --- Rows -------------------------------------------------------------------------------------------


def replicas_record_published(
    *, asset: MediaAsset, version: int, previous_version: int | None, other_regions: bool = True
) -> None:
    """Inside publish's transaction: the new version is complete in the primary region and pending
    everywhere else; the version it replaces is scheduled for deletion after the grace period.

    ``other_regions=False``: a provisional stream still growing, served from the primary region only;
    replicas_record_closed brings in the other regions once it is whole."""
    now = timezone.now()
    prefix = asset.version_prefix(version)
    for region in regions_all() if other_regions else [r for r in regions_all() if r.primary]:
        VersionReplica.objects.update_or_create(
            prefix=prefix,
            region=region.name,
            defaults={
                "asset": asset,
                "state": ReplicaState.COMPLETE if region.primary else ReplicaState.PENDING,
                "available_at": now,
                "completed_at": now if region.primary else None,
                "last_error": "",
            },
        )
    if previous_version is not None and previous_version != version:
        grace = settings.MEDIA_OLD_VERSION_GRACE_SECONDS
        retired = _schedule_deletion(
            asset=asset, prefixes=[asset.version_prefix(previous_version)], after=now + timedelta(seconds=grace)
        )
        transaction.on_commit(lambda: _send_collect(retired, delay_ms=(grace + 1) * 1000))
    if other_regions:
        transaction.on_commit(lambda: replicas_enqueue(prefix=prefix))


def replicas_record_closed(*, asset_id: int, version: int) -> None:
    """A growing provisional version is whole (its index written): the other regions may copy it now,
    if it is still the published version (idempotent)."""
    now = timezone.now()
    with transaction.atomic():
        asset = MediaAsset.objects.select_for_update().filter(pk=asset_id, published_version=version).first()
        if asset is None:
            return
        prefix = asset.version_prefix(version)
        for region in regions_all():
            if not region.primary:
                VersionReplica.objects.get_or_create(
                    prefix=prefix,
                    region=region.name,
                    defaults={"asset": asset, "state": ReplicaState.PENDING, "available_at": now},
                )
        transaction.on_commit(lambda: replicas_enqueue(prefix=prefix))


def version_withdraw(*, asset: MediaAsset, version: int) -> None:
    """Inside a transaction: a version taken out of service (a lesson made protected stops serving its
    clear version) is deleted in every region now, without the grace period for tokens already given
    out: those tokens then name objects that are gone (docs/security.md)."""
    ids = _schedule_deletion(asset=asset, prefixes=[asset.version_prefix(version)], after=timezone.now())
    transaction.on_commit(lambda: _send_collect(ids))


def _schedule_deletion(*, asset: MediaAsset | None, prefixes: list[str], after: datetime) -> list[int]:
    """Mark the prefixes for deletion in every configured region and wherever a row says they are."""
    now = timezone.now()
    for prefix in prefixes:
        for region in regions_all():
            VersionReplica.objects.get_or_create(
                prefix=prefix,
                region=region.name,
                defaults={"asset": asset, "available_at": now, "state": ReplicaState.DELETING, "delete_after": after},
            )
    rows = VersionReplica.objects.filter(prefix__in=prefixes).exclude(state=ReplicaState.DELETED)
    ids = list(rows.values_list("pk", flat=True))
    VersionReplica.objects.filter(pk__in=ids).update(state=ReplicaState.DELETING, delete_after=after, updated_at=now)
    return ids


def asset_delete(*, asset_id: int) -> None:
    """Remove an asset and, in every region, every object it ever had (versions, builds, originals, and
    the work objects of a chunked build: the split source and chunk outputs under ``<key_prefix>/work/``).

    The rows outlive the asset, so a region that is down now is cleaned when it returns. A worker still
    encoding for the asset stops when it next reports progress and removes what it wrote
    (steps/chunked.py); ``deleted_prefixes_sweep`` removes what a worker that died first left behind.
    """
    asset = MediaAsset.objects.filter(pk=asset_id).first()
    if asset is None:
        return
    with transaction.atomic():
        known = set(VersionReplica.objects.filter(asset=asset).values_list("prefix", flat=True))
        built = {asset.version_prefix(version) for version in range(1, asset.building_version + 1)}
        work = f"{asset.key_prefix}/work/"
        prefixes = sorted(known | built | {f"sources/{asset.public_id}/", work})
        ids = _schedule_deletion(asset=asset, prefixes=prefixes, after=timezone.now())
        asset.delete()
        transaction.on_commit(lambda: _send_collect(ids))


def _send_collect(ids: list[int], *, delay_ms: int | None = None) -> None:
    for replica_id in ids:
        send_now("collect_replica", replica_id, delay_ms=delay_ms)  # if refused, `replicas sync` re-sends


def replicas_enqueue(*, prefix: str | None = None) -> int:
    """Send the copy (and due deletion) messages for every row that still needs work."""
    now = timezone.now()
    rows = VersionReplica.objects.filter(_copyable(now))
    if prefix is not None:
        rows = rows.filter(prefix=prefix)
    sent = 0
    for replica_id in rows.values_list("pk", flat=True):
        # If refused, `replicas sync` (or pipeline_resume) sends it again.
        sent += send_now("replicate_version", replica_id)
    if prefix is None:
        due_rows = VersionReplica.objects.filter(state=ReplicaState.DELETING, delete_after__lte=now)
        due = list(due_rows.values_list("pk", flat=True))
        _send_collect(due)
        sent += len(due)
    return sent


def replicas_ensure() -> int:
    """Create the missing rows for every published version in every region (a region added later);
    returns how many were created. Their copies start with ``replicas_enqueue``."""
    created = 0
    for asset in MediaAsset.objects.filter(published_version__isnull=False):
        for region in regions_all():
            _, made = VersionReplica.objects.get_or_create(
                prefix=asset.published_prefix,
                region=region.name,
                defaults={
                    "asset": asset,
                    "available_at": asset.published_at or timezone.now(),
                    # Publish verified the primary copy; every other region starts empty.
                    "state": ReplicaState.COMPLETE if region.primary else ReplicaState.PENDING,
                    "completed_at": timezone.now() if region.primary else None,
                },
            )
            created += made
    return created


# --- The copy ----------------------------------------------------------------------------------------


def _copyable(now: datetime) -> Q:
    """Rows a worker may start copying: waiting, or COPYING by a worker whose lease has lapsed."""
    return Q(state__in=[ReplicaState.PENDING, ReplicaState.DEGRADED]) | (Q(state=ReplicaState.COPYING) & lapsed(now))


def _claim(replica_id: int) -> VersionReplica | None:
    now = timezone.now()
    claimed = lease_take(
        VersionReplica,
        replica_id,
        when=_copyable(now),
        seconds=LEASE_SECONDS,
        now=now,
        state=ReplicaState.COPYING,
        attempts=F("attempts") + 1,
    )
    return VersionReplica.objects.get(pk=replica_id) if claimed else None


def _sources_for(replica: VersionReplica) -> list[Region]:
    complete = set(
        VersionReplica.objects.filter(prefix=replica.prefix, state=ReplicaState.COMPLETE)
        .exclude(region=replica.region)
        .values_list("region", flat=True)
    )
    return [region for region in regions_all() if region.name in complete]


def replica_sync(*, replica_id: int) -> None:
    """Make one region hold the whole version, verified; idempotent, resumable, safe to race."""
    replica = _claim(replica_id)
    if replica is None:
        return
    target_region = region_get(replica.region)
    if target_region is None:
        _set_state(replica, ReplicaState.DEGRADED, error=f"region {replica.region} is no longer configured")
        return
    try:
        sources = _sources_for(replica)
        source_region, index = index_from_any(replica.prefix, prefer=sources)
        ordered = [source_region] + [region for region in sources if region != source_region]
        _copy_missing(replica, [store_for(region) for region in ordered], store_for(target_region), index)
    except NoGoodSource as exc:
        _set_state(replica, ReplicaState.DEGRADED, error=str(exc))
        raise
    except Exception as exc:
        _set_state(replica, ReplicaState.DEGRADED, error=f"{type(exc).__name__}: {exc}")
        raise RegionUnavailable(f"{replica}: {exc}") from exc
    _set_state(replica, ReplicaState.COMPLETE, error="")


def _set_state(replica: VersionReplica, state: str, *, error: str) -> None:
    """End the copy: the outcome, and the lease given up (only while it is still COPYING)."""
    lease_release(
        VersionReplica,
        replica.pk,
        when=Q(state=ReplicaState.COPYING),
        state=state,
        last_error=error[:1000],
        completed_at=timezone.now() if state == ReplicaState.COMPLETE else None,
    )


def _copy_from_any(*, sources: list[ObjectStore], target: ObjectStore, key: str, expected: Expected) -> None:
    """Copy from the first source whose object matches the index (a corrupt one is skipped)."""
    for source in sources[:-1]:
        try:
            return copy_object(source=source, target=target, key=key, expected=expected)
        except SourceCorrupt as exc:
            logger.warning("%s; trying the next region", exc)
    copy_object(source=sources[-1], target=target, key=key, expected=expected)


def _copy_missing(
    replica: VersionReplica, sources: list[ObjectStore], target: ObjectStore, index: dict[str, Expected]
) -> None:
    present = target.list(replica.prefix)
    index_key = replica.prefix + INDEX_NAME
    todo = [
        key
        for key, expected in sorted(index.items())
        if key != index_key and not _already_there(target, key, expected, present)
    ]
    done = len(index) - 1 - len(todo)
    VersionReplica.objects.filter(pk=replica.pk).update(objects_total=len(index), objects_copied=done)
    renewed = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=settings.REPLICATION_CONCURRENCY, thread_name_prefix="replicate")
    try:
        futures: dict[Future[None], str] = {
            pool.submit(_copy_from_any, sources=sources, target=target, key=key, expected=index[key]): key
            for key in todo
        }
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=5, return_when=FIRST_EXCEPTION)
            landed = [future for future in finished if future.exception() is None]
            VersionReplica.objects.filter(pk=replica.pk).update(
                objects_copied=F("objects_copied") + len(landed),
                bytes_copied=F("bytes_copied") + sum(index[futures[future]].size for future in landed),
            )
            for future in finished:
                future.result()  # the first failure ends this attempt; the queued copies are cancelled
            if time.monotonic() - renewed > 30:
                lease_renew(VersionReplica, replica.pk, seconds=LEASE_SECONDS, when=Q(state=ReplicaState.COPYING))
                renewed = time.monotonic()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    # The index goes last: its presence in a region means the version is whole there.
    index_bytes = 0
    if not _already_there(target, index_key, index[index_key], present):
        _copy_from_any(sources=sources, target=target, key=index_key, expected=index[index_key])
        index_bytes = index[index_key].size
    VersionReplica.objects.filter(pk=replica.pk).update(
        objects_copied=len(index), bytes_copied=F("bytes_copied") + index_bytes
    )


def _already_there(target: ObjectStore, key: str, expected: Expected, present: dict[str, int]) -> bool:
    if present.get(key) != expected.size:
        return False
    info = target.head(key)
    return info is not None and info.sha256 in (None, expected.sha256)


# --- Deletion ---------------------------------------------------------------------------------------


def replica_collect(*, replica_id: int) -> None:
    """Delete a prefix in one region once its time has come; retried until the region answers."""
    replica = VersionReplica.objects.filter(pk=replica_id, state=ReplicaState.DELETING).first()
    if replica is None:
        return
    now = timezone.now()
    if replica.delete_after and replica.delete_after > now:
        return  # a delayed message (or `replicas sync`) comes back for it
    region = region_get(replica.region)
    if region is None:
        VersionReplica.objects.filter(pk=replica.pk).update(state=ReplicaState.DELETED, last_error="region removed")
        return
    try:
        removed = store_for(region).delete_prefix(replica.prefix)
    except Exception as exc:
        VersionReplica.objects.filter(pk=replica.pk).update(last_error=f"{type(exc).__name__}: {exc}"[:1000])
        raise RegionUnavailable(f"deleting {replica}: {exc}") from exc
    VersionReplica.objects.filter(pk=replica.pk, state=ReplicaState.DELETING).update(
        state=ReplicaState.DELETED, last_error="", updated_at=timezone.now()
    )
    logger.info("deleted %s objects of %s in %s", removed, replica.prefix, replica.region)


def deleted_prefixes_sweep(*, within: timedelta) -> int:
    """Delete again whatever is under the prefixes of assets deleted in the last ``within``; returns the
    objects removed. A worker encoding for an asset when it was deleted may upload after the deletion ran
    and die before it removes what it wrote; ``within`` is as long as such a worker can live
    (``pipeline_resume``: twice ENCODE_TIMEOUT_SECONDS), so the rows to look at stay few."""
    since = timezone.now() - within
    rows = VersionReplica.objects.filter(asset__isnull=True, state=ReplicaState.DELETED, updated_at__gte=since)
    removed = 0
    for prefix, region_name in rows.values_list("prefix", "region"):
        region = region_get(region_name)
        if region is None:
            continue
        late = store_for(region).delete_prefix(prefix)
        if late:
            logger.warning("removed %s objects written under %s in %s after its asset was deleted", late, prefix,
                           region_name)  # fmt: skip
        removed += late
    return removed


# --- Reads for the lag metric -----------------------------------------------------------------------


def replication_lag_seconds() -> dict[str, float]:
    """Per region: age of the oldest version still not complete there (0 when none)."""
    lag = {region.name: 0.0 for region in regions_all()}
    now = timezone.now()
    rows = VersionReplica.objects.filter(state__in=COPYABLE).values_list("region", "available_at")
    for region, available_at in rows:
        if region in lag:
            lag[region] = max(lag[region], (now - available_at).total_seconds())
    return lag
