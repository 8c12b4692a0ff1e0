"""Direct uploads: the client sends an original's parts straight to S3 through presigned part URLs,
so no video byte passes a web process (docs/adr/0026).

The row is a ResumableUpload with ``transport=direct``: created by uploads.upload_create (size limit
and quota checked before any storage call; the whole length reserved against the quota while it is
unfinished), swept by uploads.uploads_sweep when it expires, cancelled by uploads.upload_terminate,
and finished by uploads.upload_finish, the step a finished tus upload ends with, so the pipeline
starts the same way, once. What is particular to a direct upload is here:

- part URLs: a presigned ``UploadPart`` URL per part, with the client's ``Content-MD5`` of that part
  signed into it, so storage refuses a part whose bytes differ (400 BadDigest) or a request without
  the header (403, the signature no longer matches);
- completion: the stored parts are listed (``ListParts``, no byte is read back) and must be exactly
  parts 1..N with the sizes that follow from the upload's length and part size, and the ETags the
  client saw; only then is the multipart upload completed, with those ETags (S3 refuses a part
  replaced meanwhile).
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from core import errors
from media_pipeline import regions, storage, uploads
from media_pipeline.models import MediaAsset, ResumableUpload, UploadStatus, UploadTransport

MAX_URLS_PER_REQUEST = 100


class DirectUnavailable(uploads.UploadError, errors.Conflict):
    """Storage is not S3 (or UPLOAD_DIRECT is off): upload over tus instead."""


class PartsInvalid(uploads.UploadError, errors.Invalid):
    """The parts asked for or stored are not the ones this upload needs; nothing changed."""


@dataclass(frozen=True)
class PartUrl:
    number: int
    url: str
    headers: dict[str, str]


@dataclass(frozen=True)
class StoredPart:
    number: int
    size: int
    etag: str


def direct_available() -> bool:
    """Whether clients may upload straight to storage: S3 storage and UPLOAD_DIRECT on."""
    return bool(settings.UPLOAD_DIRECT) and not storage.is_local()


def part_count(upload: ResumableUpload) -> int:
    return math.ceil(upload.length / upload.part_size)


def direct_upload_create(
    *, owner: User, asset: MediaAsset, length: int, filename: str, quota: uploads.QuotaScope | None = None
) -> ResumableUpload:
    """Start a direct upload (the caller checked that ``owner`` may upload to the asset's lesson).
    Raises DirectUnavailable, or uploads' UploadTooLarge / QuotaExceeded before any storage call."""
    if not direct_available():
        raise DirectUnavailable("direct uploads need S3 storage; upload over tus (/api/v1/uploads/)")
    return uploads.upload_create(
        owner=owner,
        asset=asset,
        length=length,
        filename=filename,
        transport=UploadTransport.DIRECT,
        part_size=settings.UPLOAD_DIRECT_PART_BYTES,
        quota=quota,
    )


def _check_open(upload: ResumableUpload) -> None:
    if upload.transport != UploadTransport.DIRECT:
        raise DirectUnavailable("this is a tus upload")
    if upload.status in (UploadStatus.COMPLETING, UploadStatus.COMPLETED):
        raise uploads.UploadFinished("this upload is complete")
    if upload.status != UploadStatus.ACTIVE or upload.expires_at <= timezone.now():
        raise uploads.UploadGone("this upload was cancelled or has expired; start a new one")


def md5_digest(value: str) -> bytes | None:
    """The 16 bytes of a base64 MD5 (as Content-MD5 carries it), or None when it is not one."""
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest if len(digest) == 16 else None


def direct_part_urls(*, upload: ResumableUpload, parts: list[tuple[int, str]]) -> list[PartUrl]:
    """A presigned UploadPart URL for each (part number, base64 MD5 of its bytes). The MD5 is signed
    into the URL: the client must send it as Content-MD5, and storage checks the bytes against it.
    Asking for URLs keeps the upload alive (its expiry moves on)."""
    _check_open(upload)
    count = part_count(upload)
    if not 1 <= len(parts) <= MAX_URLS_PER_REQUEST:
        raise PartsInvalid(f"ask for 1 to {MAX_URLS_PER_REQUEST} parts at a time")
    numbers = [number for number, _ in parts]
    if len(set(numbers)) != len(numbers):
        raise PartsInvalid("a part number is listed twice")
    for number, md5 in parts:
        if not 1 <= number <= count:
            raise PartsInvalid(f"part {number} does not exist: this upload has parts 1 to {count}")
        if md5_digest(md5) is None:
            raise PartsInvalid(f"part {number}: md5 must be the base64 of the part's 16-byte MD5 digest")
    kept = ResumableUpload.objects.filter(pk=upload.pk, status=UploadStatus.ACTIVE).update(
        expires_at=timezone.now() + timedelta(seconds=settings.UPLOAD_EXPIRY_SECONDS), updated_at=timezone.now()
    )
    if not kept:
        raise uploads.UploadGone("this upload was cancelled or has expired; start a new one")
    client, bucket = presigning_client()
    return [
        PartUrl(
            number=number,
            url=client.generate_presigned_url(
                "upload_part",
                Params={
                    "Bucket": bucket,
                    "Key": upload.storage_key,
                    "UploadId": upload.multipart_id,
                    "PartNumber": number,
                    "ContentMD5": md5,
                },
                ExpiresIn=settings.UPLOAD_DIRECT_URL_SECONDS,
            ),
            headers={"Content-MD5": md5},
        )
        for number, md5 in parts
    ]


def stored_parts(upload: ResumableUpload) -> list[StoredPart]:
    """The parts storage holds for an unfinished direct upload (ListParts: metadata, no bytes)."""
    from botocore.exceptions import ClientError

    client, bucket = storage.s3_client_and_bucket()
    found: list[StoredPart] = []
    marker = 0
    while True:
        try:
            page = client.list_parts(
                Bucket=bucket,
                Key=upload.storage_key,
                UploadId=upload.multipart_id,
                MaxParts=1000,
                PartNumberMarker=marker,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchUpload", "404"):
                raise
            raise uploads.UploadGone("storage no longer holds this upload; start a new one") from exc
        found += [StoredPart(p["PartNumber"], p["Size"], normal_etag(p["ETag"])) for p in page.get("Parts", [])]
        if not page.get("IsTruncated"):
            return found
        marker = int(page["NextPartNumberMarker"])


def normal_etag(etag: str) -> str:
    return etag.strip().strip('"').lower()


def parts_problems(
    *, declared: list[tuple[int, str]], stored: list[StoredPart], length: int, part_size: int
) -> list[str]:
    """What is wrong with completing an upload of ``length`` bytes in ``part_size`` parts, given the
    parts the client declares (number, ETag) and those storage holds. Empty: complete it."""
    count = math.ceil(length / part_size)
    expected = {n: part_size if n < count else length - (count - 1) * part_size for n in range(1, count + 1)}
    problems: list[str] = []
    numbers = [number for number, _ in declared]
    if sorted(numbers) != list(range(1, count + 1)):
        problems.append(f"the parts listed must be 1 to {count}, each once")
    # A part sent again is listed once per version by some stores (SeaweedFS 4.48; S3 keeps the last
    # only); completion names the version by its ETag, so that is the one checked.
    have: dict[int, dict[str, int]] = {}
    for part in stored:
        have.setdefault(part.number, {})[part.etag] = part.size
    total = 0
    for number, etag in sorted(declared):
        versions = have.get(number)
        size = (versions or {}).get(normal_etag(etag))
        if not versions:
            problems.append(f"part {number} is not in storage")
        elif size is None:
            problems.append(f"part {number}'s ETag in storage is not the one listed")
        elif size != expected.get(number, -1):
            problems.append(f"part {number} holds {size} bytes, not {expected.get(number, 0)}")
        else:
            total += size
    extra = sorted(set(have) - set(expected))
    if extra:
        problems.append(f"storage holds parts beyond the last ({extra[0]})")
    if not problems and total != length:  # follows from the sizes; checked anyway
        problems.append("the parts do not add up to the upload's length")
    return problems


def direct_upload_complete(*, upload: ResumableUpload, parts: list[tuple[int, str]]) -> ResumableUpload:
    """Check the stored parts against the client's list and the declared size, complete the multipart
    upload and hand the original to the pipeline (uploads.upload_finish: once). Refused (PartsInvalid,
    nothing changes) if a part is missing, short, or not the one the client sent. A repeat after
    success answers with the finished upload and starts nothing."""
    if upload.transport != UploadTransport.DIRECT:
        raise DirectUnavailable("this is a tus upload")
    if upload.status == UploadStatus.COMPLETED:
        return upload
    if upload.status == UploadStatus.COMPLETING:  # a request that died here, or one running now: safe to repeat
        return uploads.upload_finish(upload=upload)
    _check_open(upload)
    problems = parts_problems(
        declared=parts, stored=stored_parts(upload), length=upload.length, part_size=upload.part_size
    )
    if problems:
        raise PartsInvalid("; ".join(problems[:5]))
    ordered = [{"n": number, "etag": f'"{normal_etag(etag)}"'} for number, etag in sorted(parts)]
    moved = ResumableUpload.objects.filter(pk=upload.pk, status=UploadStatus.ACTIVE).update(
        status=UploadStatus.COMPLETING, offset=upload.length, parts=ordered, updated_at=timezone.now()
    )
    upload.refresh_from_db()
    if not moved and upload.status not in (UploadStatus.COMPLETING, UploadStatus.COMPLETED):
        raise uploads.UploadGone("this upload was cancelled while it was being completed")
    if upload.status == UploadStatus.COMPLETED:
        return upload
    return uploads.upload_finish(upload=upload)


# --- The presigning client ---------------------------------------------------------------------------

_presigner: tuple[tuple[Any, ...], Any, str] | None = None
_presigner_lock = threading.Lock()


def presigning_client() -> tuple[Any, str]:
    """A boto3 client for the primary region that signs URLs for the endpoint browsers reach
    (S3_PUBLIC_ENDPOINT_URL, else S3_ENDPOINT_URL), and the bucket. Signing is local: no request."""
    global _presigner
    config = regions.region_primary().config
    endpoint = config.get("public_endpoint_url") or config.get("endpoint_url")
    identity = (endpoint, config["access_key"], config["bucket"], config.get("region_name"))
    current = _presigner
    if current is not None and current[0] == identity:
        return current[1], current[2]
    import boto3
    from botocore.config import Config

    with _presigner_lock:
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            region_name=config.get("region_name"),
            aws_access_key_id=config["access_key"],
            aws_secret_access_key=config["secret_key"],
            config=Config(signature_version="s3v4", s3={"addressing_style": config.get("addressing_style", "path")}),
        )
        _presigner = (identity, client, config["bucket"])
    return client, config["bucket"]
