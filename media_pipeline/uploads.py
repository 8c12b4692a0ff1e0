"""Resumable uploads: where the bytes of a tus upload go, and the state that lets any web process
resume it (docs/adr/0009).

With S3 storage the bytes go into an S3 multipart upload as they arrive. Parts have a fixed size
per upload (at least 5 MiB, S3's minimum), so part N always holds bytes (N-1)*size .. N*size-1 and
a retried chunk rewrites the same part numbers with the same bytes. What arrives after the last
whole part (less than one part) is kept in a small spool object, so the next request, in any web
process, carries on. A request holds at most one part in memory and nothing on local disk.

With local storage the bytes are appended to ``<key>.part`` in the media root, renamed at the end.

Each append holds a lease on the row (compare-and-set) and commits the new offset with another
compare-and-set, so two requests for one upload never both write, and a completed upload attaches
its source to the asset, starting the pipeline, exactly once.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Q, QuerySet, Sum
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from core import errors
from core.leases import lapsed, lease_release, lease_renew, lease_take
from core.streams import Readable
from media_pipeline import layout
from media_pipeline import services as media_services
from media_pipeline.models import (
    AssetStatus,
    MediaAsset,
    ResumableUpload,
    UploadQuota,
    UploadStatus,
    UploadTransport,
)
from media_pipeline.tus import Checksum
from media_pipeline.upload_sinks import Sink, sink_for_storage

logger = logging.getLogger(__name__)

MAX_PARTS = 10_000  # S3's limit
MIB = 1024 * 1024


class UploadError(errors.DomainError):
    """Refused; the message is the reason shown to the uploader. The tus view gives each its status."""


class UploadTooLarge(UploadError, errors.TooLarge):
    pass


class QuotaExceeded(UploadError, errors.TooLarge):
    pass


class OffsetConflict(UploadError, errors.Conflict):
    pass


class UploadBusy(UploadError, errors.Conflict):
    """Another request is appending to this upload right now."""


class UploadGone(UploadError, errors.NotFound):
    """Terminated or expired."""


class UploadFinished(UploadError, errors.NotAllowed):
    """Complete: nothing more may be appended."""


class ChecksumMismatch(UploadError, errors.Invalid):
    """The chunk's bytes do not match the checksum the client sent with it."""


def _size(n: int) -> str:
    return filesizeformat(n).replace("\xa0", " ")


# --- Quotas -------------------------------------------------------------------------------------------


def quota_bytes(*, user: User) -> int:
    override = UploadQuota.objects.filter(user_id=user.pk).values_list("quota_bytes", flat=True).first()
    return settings.UPLOAD_QUOTA_BYTES if override is None else override


def quota_used(*, user: User) -> int:
    """Bytes of originals the user holds in storage: unfinished uploads (their whole length is reserved)
    and every finished one still kept: the current original of each video and the originals it replaced,
    until services.asset_collect_replaced_originals deletes those (DISCARDED) or the video is deleted
    (its uploads lose their asset). Counting only current originals let a user re-upload without limit."""
    held = ResumableUpload.objects.filter(
        owner_id=user.pk,
        asset__isnull=False,
        status__in=[UploadStatus.ACTIVE, UploadStatus.COMPLETING, UploadStatus.COMPLETED],
    )
    return held.aggregate(total=Sum("length"))["total"] or 0


@dataclass(frozen=True)
class QuotaScope:
    """A quota that replaces the owner's site-wide one for one way of uploading (an LMS's lesson picker
    has its own, per platform): at most ``limit`` bytes over the owner's originals held for the assets
    ``assets`` selects (a query of MediaAsset ids, evaluated at every check, so assets made since count).
    ``name`` says which quota in the refusal."""

    limit: int
    assets: QuerySet[Any]
    name: str


def _quota_used_in(user: User, scope: QuotaScope) -> int:
    held = ResumableUpload.objects.filter(
        owner_id=user.pk,
        asset_id__in=scope.assets,
        status__in=[UploadStatus.ACTIVE, UploadStatus.COMPLETING, UploadStatus.COMPLETED],
    )
    return held.aggregate(total=Sum("length"))["total"] or 0


def _check_quota(user: User, length: int, scope: QuotaScope | None = None) -> None:
    if scope is None:
        quota, used, name = quota_bytes(user=user), quota_used(user=user), "storage quota"
    else:
        quota, used, name = scope.limit, _quota_used_in(user, scope), scope.name
    if used + length > quota:
        raise QuotaExceeded(
            f"This file is {_size(length)}, but only {_size(max(0, quota - used))} of your {_size(quota)} "
            f"{name} is left. Delete videos you no longer need, or ask an administrator for more."
        )


def check_size(length: int) -> None:
    if length <= 0:
        raise UploadError("The file is empty.")
    if length > settings.MAX_UPLOAD_BYTES:
        raise UploadTooLarge(
            f"The file is {_size(length)}; the largest upload allowed is {_size(settings.MAX_UPLOAD_BYTES)}."
        )


# --- Lifecycle ----------------------------------------------------------------------------------------


def part_size_for(length: int, *, configured: int | None = None) -> int:
    """The configured part size, or larger (whole MiB) when the file would need over 10,000 parts."""
    needed = math.ceil(length / MAX_PARTS)
    return max(configured or settings.UPLOAD_PART_BYTES, math.ceil(needed / MIB) * MIB)


def upload_create(
    *,
    owner: User,
    asset: MediaAsset,
    length: int,
    filename: str,
    transport: str = UploadTransport.TUS,
    part_size: int | None = None,
    quota: QuotaScope | None = None,
) -> ResumableUpload:
    """Start a resumable upload of ``length`` bytes as the next original of ``asset`` (its bytes come
    over tus, or for ``UploadTransport.DIRECT`` straight from the client to S3: direct_uploads.py).

    Raises UploadTooLarge / QuotaExceeded (413) with a reason the uploader can read, before any
    storage call. While unfinished, the upload's whole length counts towards the owner's quota
    (``quota``, when given, instead of the site-wide one).
    """
    check_size(length)
    _check_quota(owner, length, quota)  # cheap early refusal before any storage call
    key = layout.source_key(asset_public_id=str(asset.public_id), upload_id=uuid.uuid4().hex)
    sink = sink_for_storage()
    multipart_id = sink.begin(key)
    try:
        with transaction.atomic():
            # One educator's uploads are admitted one at a time, so two at once cannot both take the
            # last of a quota.
            get_user_model().objects.select_for_update().filter(pk=owner.pk).first()
            _check_quota(owner, length, quota)
            return ResumableUpload.objects.create(
                owner=owner,
                asset=asset,
                storage_key=key,
                filename=filename[:255],
                length=length,
                part_size=part_size_for(length, configured=part_size),
                multipart_id=multipart_id,
                transport=transport,
                expires_at=timezone.now() + timedelta(seconds=settings.UPLOAD_EXPIRY_SECONDS),
            )
    except BaseException:
        sink.discard_all(key=key, multipart_id=multipart_id, upload_public_id=None)
        raise


def upload_record_direct(*, owner: User, asset: MediaAsset, filename: str) -> ResumableUpload:
    """Record a source that arrived whole (a form upload) as a finished upload of ``owner``, so
    that it counts towards their quota like a resumable one."""
    return ResumableUpload.objects.create(
        owner=owner,
        asset=asset,
        storage_key=asset.source_key,
        filename=filename[:255],
        length=asset.source_size,
        offset=asset.source_size,
        part_size=0,
        status=UploadStatus.COMPLETED,
        expires_at=timezone.now(),
        completed_at=timezone.now(),
    )


def check_quota(*, user: User, length: int, quota: QuotaScope | None = None) -> None:
    """Raise QuotaExceeded (with the reason to show) if ``length`` more bytes would not fit (in ``quota``,
    when given, else in the user's site-wide quota)."""
    _check_quota(user, length, quota)


def upload_append(
    *, upload: ResumableUpload, offset: int, stream: Readable, length: int, checksum: Checksum | None
) -> ResumableUpload:
    """Append the ``length`` bytes of ``stream`` at ``offset``; returns the upload as committed.

    Without a checksum, a body cut short (the connection dropped) still keeps what arrived, so the
    client resumes from there. With one, the chunk is stored only if it is whole and matches.
    """
    _check_appendable(upload, offset)
    if offset + length > upload.length:
        raise UploadError(f"the chunk would end at byte {offset + length}, past the upload's length {upload.length}")
    if length > settings.UPLOAD_MAX_CHUNK_BYTES:
        raise UploadTooLarge(
            f"one request may carry at most {_size(settings.UPLOAD_MAX_CHUNK_BYTES)}; upload in smaller chunks"
        )
    if length == 0:
        return upload  # an empty PATCH (a client probing): nothing to store
    lease = _Lease.acquire(upload, offset)
    sink = sink_for_storage()
    try:
        hasher = checksum.hasher() if checksum else None
        received, staged = sink.receive(upload, stream, length, hasher, lease)
        if checksum is not None and hasher is not None and (received < length or hasher.digest() != checksum.digest):
            sink.discard(upload, staged)
            if received < length:
                raise UploadError("the request ended before all its bytes arrived; nothing was stored")
            raise ChecksumMismatch(f"the chunk's {checksum.algorithm} checksum does not match; nothing was stored")
        new_offset = offset + received
        if new_offset == upload.length:
            return _complete(upload, sink, staged, lease)
        fields = sink.stage(upload, staged, new_offset)
        # The new offset is committed as the lease is given up, only by its holder, only from ``offset``.
        moved = lease.release(
            when=Q(status=UploadStatus.ACTIVE, offset=offset),
            offset=new_offset,
            expires_at=timezone.now() + timedelta(seconds=settings.UPLOAD_EXPIRY_SECONDS),
            **fields,
        )
        if not moved:
            sink.unstage(fields)
            raise UploadGone("the upload was cancelled while this chunk arrived")
        sink.committed(upload, fields)
    finally:
        lease.release()
    upload.refresh_from_db()
    return upload


def _check_appendable(upload: ResumableUpload, offset: int) -> None:
    if upload.status in (UploadStatus.TERMINATED, UploadStatus.EXPIRED):
        raise UploadGone("this upload was cancelled or has expired; start a new one")
    current = upload.length if upload.status != UploadStatus.ACTIVE else upload.offset
    if offset != current:
        raise OffsetConflict(f"the upload is at byte {current}, not {offset}")


def _complete(upload: ResumableUpload, sink: Sink, staged: Any, lease: _Lease) -> ResumableUpload:
    fields = sink.stage_final(upload, staged)
    moved = ResumableUpload.objects.filter(lease.held(), status=UploadStatus.ACTIVE).update(
        status=UploadStatus.COMPLETING, offset=upload.length, updated_at=timezone.now(), **fields
    )
    if moved != 1:
        raise UploadGone("the upload was cancelled while its last chunk arrived")
    upload.refresh_from_db()
    return upload_finish(upload=upload)


def upload_finish(*, upload: ResumableUpload) -> ResumableUpload:
    """Assemble a COMPLETING upload into its object and hand it to the pipeline (once). Safe to
    repeat: the sweep finishes uploads whose web process died here."""
    sink = sink_for_storage()
    sink.assemble(upload)
    with transaction.atomic():
        moved = lease_release(
            ResumableUpload,
            upload.pk,
            when=Q(status=UploadStatus.COMPLETING),
            status=UploadStatus.COMPLETED,
            completed_at=timezone.now(),
            lease_token="",
        )
        asset = MediaAsset.objects.filter(pk=upload.asset_id).first() if upload.asset_id else None
        if moved and asset is not None:
            media_services.asset_attach_source(
                asset=asset, key=upload.storage_key, size=upload.length, source_name=upload.filename
            )
    sink.discard_spool(upload.public_id)
    upload.refresh_from_db()
    return upload


def upload_terminate(*, upload: ResumableUpload) -> None:
    """Cancel an unfinished upload and free its storage (tus termination)."""
    # Whoever holds the lease loses it: its chunk then finds the upload gone and stores nothing.
    moved = lease_release(
        ResumableUpload, upload.pk, when=Q(status=UploadStatus.ACTIVE), status=UploadStatus.TERMINATED, lease_token=""
    )
    if not moved:
        upload.refresh_from_db()
        if upload.status in (UploadStatus.COMPLETING, UploadStatus.COMPLETED):
            raise UploadFinished("this upload is complete; replace or delete the lesson's video instead")
        raise UploadGone("this upload was already cancelled or has expired")
    sink_for_storage().discard_all(
        key=upload.storage_key, multipart_id=upload.multipart_id, upload_public_id=upload.public_id
    )


def uploads_sweep() -> dict[str, int]:
    """Abort unfinished uploads that expired (or whose asset is gone), finish uploads whose web
    process died while assembling them, and delete replaced originals nothing needs any more. Run
    from cron (``manage.py uploads_sweep``, also part of ``pipeline_resume``); always safe."""
    now = timezone.now()
    expired = 0
    candidates = ResumableUpload.objects.filter(status=UploadStatus.ACTIVE).filter(
        Q(expires_at__lt=now) | Q(asset__isnull=True)
    )
    # Never while a request holds the lease: it is appending right now.
    for upload in candidates.filter(lapsed(now)):
        if (
            ResumableUpload.objects.filter(pk=upload.pk, status=UploadStatus.ACTIVE)
            .filter(lapsed(now))
            .update(status=UploadStatus.EXPIRED, updated_at=now)
        ):
            sink_for_storage().discard_all(
                key=upload.storage_key, multipart_id=upload.multipart_id, upload_public_id=upload.public_id
            )
            expired += 1
    finished = 0
    stale = now - timedelta(seconds=settings.UPLOAD_LEASE_SECONDS)
    for upload in ResumableUpload.objects.filter(status=UploadStatus.COMPLETING, updated_at__lt=stale):
        try:
            upload_finish(upload=upload)
            finished += 1
        except Exception:  # noqa: BLE001 - one bad upload must not stop the sweep; logged, retried next run
            logger.exception("upload %s: could not finish", upload.public_id)
    # Replaced originals whose collection after publishing did not run (a crash, storage down).
    replaced = (
        ResumableUpload.objects.filter(status=UploadStatus.COMPLETED, asset__status=AssetStatus.READY)
        .exclude(storage_key=F("asset__source_key"))
        .values_list("asset_id", flat=True)
        .distinct()
    )
    collected = 0
    for asset_id in list(replaced):
        try:
            collected += media_services.asset_collect_replaced_originals(asset_id=asset_id)
        except Exception:  # noqa: BLE001 - as above: logged, tried again next run
            logger.exception("asset %s: could not delete its replaced originals", asset_id)
    return {"expired": expired, "finished": finished, "collected": collected}


# --- Lease ------------------------------------------------------------------------------------------


@dataclass
class _Lease:
    """One request's lease on an upload (core.leases), known to be its own by a random token."""

    pk: int
    token: str
    renewed: float = field(default_factory=time.monotonic)

    @classmethod
    def acquire(cls, upload: ResumableUpload, offset: int) -> _Lease:
        token, now = secrets.token_hex(16), timezone.now()
        taken = lease_take(
            ResumableUpload,
            upload.pk,
            when=Q(status=UploadStatus.ACTIVE, offset=offset) & lapsed(now),
            seconds=settings.UPLOAD_LEASE_SECONDS,
            now=now,
            lease_token=token,
        )
        if not taken:
            upload.refresh_from_db()
            _check_appendable(upload, offset)
            raise UploadBusy("another request is appending to this upload; retry in a moment")
        return cls(upload.pk, token)

    def held(self) -> Q:
        """This upload, while this request still holds its lease."""
        return Q(pk=self.pk, lease_token=self.token)

    def renew(self) -> None:
        if time.monotonic() - self.renewed < settings.UPLOAD_LEASE_SECONDS / 4:
            return
        renewed = lease_renew(
            ResumableUpload,
            self.pk,
            seconds=settings.UPLOAD_LEASE_SECONDS,
            when=Q(status=UploadStatus.ACTIVE, lease_token=self.token),
        )
        if not renewed:
            raise UploadGone("the upload was cancelled while this chunk arrived")
        self.renewed = time.monotonic()

    def release(self, *, when: Q | None = None, **changes: Any) -> bool:
        """Give the lease up if this request still holds it (and ``when`` holds), applying ``changes``."""
        return lease_release(
            ResumableUpload, self.pk, when=Q(lease_token=self.token) & (when or Q()), lease_token="", **changes
        )
