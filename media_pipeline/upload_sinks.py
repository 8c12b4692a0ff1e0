"""Where the bytes of a resumable upload go: an S3 multipart upload (with a small spool object for
the tail of a request) or a local ``.part`` file. media_pipeline/uploads.py keeps the state and the
rules; a sink only moves bytes (docs/adr/0009).
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core.streams import Readable
from media_pipeline import storage
from media_pipeline.models import ResumableUpload

logger = logging.getLogger(__name__)

READ_SIZE = 1024 * 1024
SPOOL_PREFIX = "uploads/spool/"


class Lease(Protocol):
    """The row lease the appending request holds (uploads._Lease); a sink renews it while it reads."""

    def renew(self) -> None: ...


def _read_body(stream: Readable, length: int, received: int) -> bytes:
    try:
        return stream.read(min(READ_SIZE, length - received))
    except OSError:  # the client went away mid-body: keep what arrived
        return b""


class Sink(Protocol):
    def begin(self, key: str) -> str: ...
    def receive(
        self, upload: ResumableUpload, stream: Readable, length: int, hasher: Any, lease: Lease
    ) -> tuple[int, Any]: ...
    def discard(self, upload: ResumableUpload, staged: Any) -> None: ...
    def stage(self, upload: ResumableUpload, staged: Any, new_offset: int) -> dict[str, Any]: ...
    def unstage(self, fields: dict[str, Any]) -> None: ...
    def committed(self, upload: ResumableUpload, fields: dict[str, Any]) -> None: ...
    def stage_final(self, upload: ResumableUpload, staged: Any) -> dict[str, Any]: ...
    def assemble(self, upload: ResumableUpload) -> None: ...
    def discard_spool(self, upload_public_id: uuid.UUID) -> None: ...
    def discard_all(self, *, key: str, multipart_id: str, upload_public_id: uuid.UUID | None) -> None: ...


def sink_for_storage() -> Sink:
    return LocalSink() if storage.is_local() else S3Sink()


class LocalSink:
    """Appends to ``<key>.part`` in the media root; renamed to ``<key>`` when whole."""

    def _part(self, key: str) -> Path:
        return storage.local_path(key + ".part")

    def begin(self, key: str) -> str:
        path = self._part(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        return ""

    def receive(
        self, upload: ResumableUpload, stream: Readable, length: int, hasher: Any, lease: Lease
    ) -> tuple[int, Any]:
        received = 0
        with self._part(upload.storage_key).open("r+b") as out:
            # Bytes past the committed offset are from a request that died before committing.
            out.truncate(upload.offset)
            out.seek(upload.offset)
            while received < length and (data := _read_body(stream, length, received)):
                out.write(data)
                if hasher is not None:
                    hasher.update(data)
                received += len(data)
                lease.renew()
        return received, None

    def discard(self, upload: ResumableUpload, staged: Any) -> None:
        with self._part(upload.storage_key).open("r+b") as out:
            out.truncate(upload.offset)

    def stage(self, upload: ResumableUpload, staged: Any, new_offset: int) -> dict[str, Any]:
        return {}

    def unstage(self, fields: dict[str, Any]) -> None:
        pass

    def committed(self, upload: ResumableUpload, fields: dict[str, Any]) -> None:
        pass

    def stage_final(self, upload: ResumableUpload, staged: Any) -> dict[str, Any]:
        return {}

    def assemble(self, upload: ResumableUpload) -> None:
        part, target = self._part(upload.storage_key), storage.local_path(upload.storage_key)
        if part.exists():
            part.replace(target)
        elif not (target.exists() and target.stat().st_size == upload.length):
            raise FileNotFoundError(f"upload {upload.public_id}: neither {part} nor a whole {target}")

    def discard_spool(self, upload_public_id: uuid.UUID) -> None:
        pass

    def discard_all(self, *, key: str, multipart_id: str, upload_public_id: uuid.UUID | None) -> None:
        self._part(key).unlink(missing_ok=True)


@dataclass
class _S3Staged:
    parts: list[dict[str, Any]]
    tail: bytearray


class S3Sink:
    """An S3 multipart upload per resumable upload, plus a spool object for the tail below one part."""

    def __init__(self) -> None:
        self.client, self.bucket = storage.s3_client_and_bucket()

    def begin(self, key: str) -> str:
        created = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType="application/octet-stream"
        )
        return created["UploadId"]

    def receive(
        self, upload: ResumableUpload, stream: Readable, length: int, hasher: Any, lease: Lease
    ) -> tuple[int, Any]:
        parts = list(upload.parts)
        tail = bytearray()
        if upload.spool_key:
            tail += self.client.get_object(Bucket=self.bucket, Key=upload.spool_key)["Body"].read()
        if len(parts) * upload.part_size + len(tail) != upload.offset:
            raise RuntimeError(f"upload {upload.public_id}: stored parts and spool do not add up to its offset")
        received = 0
        while received < length and (data := _read_body(stream, length, received)):
            if hasher is not None:
                hasher.update(data)
            tail += data
            received += len(data)
            while len(tail) >= upload.part_size:
                parts.append(self._put_part(upload, len(parts) + 1, bytes(tail[: upload.part_size])))
                del tail[: upload.part_size]
                lease.renew()
        return received, _S3Staged(parts=parts, tail=tail)

    def _put_part(self, upload: ResumableUpload, number: int, body: bytes) -> dict[str, Any]:
        # Part numbers follow from offsets, so a retried chunk rewrites the same part with the same bytes.
        response = self.client.upload_part(
            Bucket=self.bucket, Key=upload.storage_key, UploadId=upload.multipart_id, PartNumber=number, Body=body
        )
        return {"n": number, "etag": response["ETag"]}

    def discard(self, upload: ResumableUpload, staged: Any) -> None:
        # Parts uploaded for a refused chunk are not recorded; the resent chunk overwrites them.
        pass

    def stage(self, upload: ResumableUpload, staged: Any, new_offset: int) -> dict[str, Any]:
        spool_key = ""
        if staged.tail:
            spool_key = f"{SPOOL_PREFIX}{upload.public_id}/{new_offset}-{secrets.token_hex(4)}"
            self.client.put_object(Bucket=self.bucket, Key=spool_key, Body=bytes(staged.tail))
        return {"parts": staged.parts, "spool_key": spool_key}

    def unstage(self, fields: dict[str, Any]) -> None:
        if fields.get("spool_key"):
            self.client.delete_object(Bucket=self.bucket, Key=fields["spool_key"])

    def committed(self, upload: ResumableUpload, fields: dict[str, Any]) -> None:
        if upload.spool_key and upload.spool_key != fields.get("spool_key"):
            self.client.delete_object(Bucket=self.bucket, Key=upload.spool_key)

    def stage_final(self, upload: ResumableUpload, staged: Any) -> dict[str, Any]:
        parts = list(staged.parts)
        if staged.tail:
            parts.append(self._put_part(upload, len(parts) + 1, bytes(staged.tail)))
        return {"parts": parts}

    def assemble(self, upload: ResumableUpload) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=upload.storage_key,
                UploadId=upload.multipart_id,
                MultipartUpload={"Parts": [{"PartNumber": p["n"], "ETag": p["etag"]} for p in upload.parts]},
            )
        except ClientError as exc:
            # Completed before a crash: the object is there, whole.
            if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise
            head = self.client.head_object(Bucket=self.bucket, Key=upload.storage_key)
            if head["ContentLength"] != upload.length:
                raise

    def discard_spool(self, upload_public_id: uuid.UUID) -> None:
        storage.delete_prefix(f"{SPOOL_PREFIX}{upload_public_id}/")

    def discard_all(self, *, key: str, multipart_id: str, upload_public_id: uuid.UUID | None) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=multipart_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchUpload", "404"):
                raise
        if upload_public_id is not None:
            self.discard_spool(upload_public_id)
