"""Object storage access for media: the one place that knows local disk from S3.

Keys are plain strings such as ``lessons/<uuid>/v1/master.m3u8``. Everything streams
in chunks; no function here holds a whole object in memory.
"""

from __future__ import annotations

import hashlib
import mimetypes
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from botocore.exceptions import ClientError
from django.core.files.storage import FileSystemStorage, default_storage
from django.utils.functional import empty

CHUNK_SIZE = 1024 * 1024

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".mp4": "video/mp4",
    ".m4s": "video/mp4",
    ".m4a": "audio/mp4",
    ".vtt": "text/vtt; charset=utf-8",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".json": "application/json",
}


def content_type_for(key: str) -> str:
    suffix = Path(key).suffix.lower()
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(key)[0] or "application/octet-stream"


def _is_local() -> bool:
    return isinstance(default_storage, FileSystemStorage)


_shared: tuple[object, Any, str] | None = None
_shared_lock = threading.Lock()


def _s3_client_and_bucket() -> tuple[Any, str]:
    """One boto3 client per process (per storage backend), shared by every thread.

    django-storages keeps a connection per thread (boto3 resources are not thread-safe; clients are).
    Under ASGI each request runs in a thread of its own, so every origin request paid for a new session
    and resource: 150-450 ms here against 6-30 ms for the request itself (bench/time_to_playable.py).
    """
    global _shared
    # default_storage is a LazyObject; its _wrapped (the backend once built) is not in Storage's type.
    backend = default_storage._wrapped if default_storage._wrapped is not empty else None  # type: ignore[attr-defined]
    shared = _shared
    if backend is not None and shared is not None and shared[0] is backend:
        return shared[1], shared[2]
    with _shared_lock:
        storage = default_storage
        # django-storages' S3Storage attributes, on a default_storage typed as the base Storage.
        client, bucket = storage.connection.meta.client, storage.bucket_name  # type: ignore[attr-defined]
        _shared = (default_storage._wrapped, client, bucket)  # type: ignore[attr-defined]  # as above
    return client, bucket


def _head(key: str) -> dict[str, Any] | None:
    client, bucket = _s3_client_and_bucket()
    try:
        return client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise


def is_local() -> bool:
    return _is_local()


def s3_client_and_bucket() -> tuple[Any, str]:
    """The boto3 client and bucket of the primary (default) storage, for multipart uploads."""
    return _s3_client_and_bucket()


def local_path(key: str) -> Path:
    return Path(default_storage.path(key))


def save_file(*, key: str, source: Path, sha256: str | None = None) -> None:
    """Upload one local file to ``key`` (overwriting), streamed, with its content type and, when
    given, its SHA-256 in the object's metadata (replication and `replicas verify` check it)."""
    if _is_local():
        target = local_path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        shutil.copyfile(source, tmp)
        tmp.replace(target)
        return
    client, bucket = _s3_client_and_bucket()
    extra: dict[str, object] = {"ContentType": content_type_for(key)}
    if sha256:
        extra["Metadata"] = {"sha256": sha256}
    client.upload_file(str(source), bucket, key, ExtraArgs=extra)


def save_files(files: list[tuple[str, Path, str]], *, concurrency: int = 8) -> None:
    """Upload several local files at once: ``(key, path, sha256)`` each, as save_file does. With S3
    every thread uses this thread's client (boto3 clients are thread-safe; making one per thread costs
    more than a small object's upload)."""
    if _is_local() or concurrency <= 1:
        for key, source, sha256 in files:
            save_file(key=key, source=source, sha256=sha256)
        return
    client, bucket = _s3_client_and_bucket()

    def put(item: tuple[str, Path, str]) -> None:
        key, source, sha256 = item
        extra = {"ContentType": content_type_for(key), "Metadata": {"sha256": sha256}}
        client.upload_file(str(source), bucket, key, ExtraArgs=extra)

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="upload") as pool:
        for _ in pool.map(put, files):  # re-raises the first failure
            pass


def save_stream(*, key: str, stream: IO[bytes]) -> int:
    """Write a readable binary stream to ``key`` in chunks; returns the number of bytes."""
    if _is_local():
        target = local_path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        tmp = target.with_name(target.name + ".part")
        with tmp.open("wb") as out:
            while chunk := stream.read(CHUNK_SIZE):
                out.write(chunk)
                written += len(chunk)
        tmp.replace(target)
        return written
    client, bucket = _s3_client_and_bucket()
    counter = _CountingReader(stream)
    client.upload_fileobj(counter, bucket, key, ExtraArgs={"ContentType": content_type_for(key)})
    return counter.count


class _CountingReader:
    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.count += len(data)
        return data


def download(*, key: str, target: Path) -> None:
    """Copy ``key`` to a local file, streamed one chunk at a time.

    One GET read in CHUNK_SIZE pieces, not boto3's download_file: its parallel ranged GETs buffer
    parts in memory, and the worker's RSS grew with the source (+27 MB for 114 MB, +69 MB for 2 GB,
    bench/README.md), while this stays flat and was faster against the local S3 server.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    if _is_local():
        shutil.copyfile(local_path(key), target)
        return
    client, bucket = _s3_client_and_bucket()
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    tmp = target.with_name(target.name + ".part")
    # botocore checks the byte count against Content-Length at the end of the stream.
    with tmp.open("wb") as out:
        for chunk in body.iter_chunks(chunk_size=CHUNK_SIZE):
            out.write(chunk)
    tmp.replace(target)


def download_ranges(*, key: str, ranges: list[tuple[int, int]], target: Path) -> int:
    """Write byte ranges ``[start, end)`` of ``key``, one after the other, to a local file (one ranged
    GET each); returns the bytes read. A chunk worker reads its piece of a long source this way."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    read = 0
    with tmp.open("wb") as out:
        for start, end in ranges:
            got = 0
            for chunk in open_range(key=key, start=start, end=end - 1) if end > start else ():
                out.write(chunk)
                got += len(chunk)
            if got != max(0, end - start):
                raise OSError(f"{key}: bytes {start}-{end - 1} came back short ({got} bytes)")
            read += got
    tmp.replace(target)
    return read


def copy(*, source_key: str, target_key: str) -> None:
    """Copy one object inside the primary storage without passing its bytes through this process
    (S3 CopyObject, multipart for large objects; the content type and metadata go with it)."""
    if _is_local():
        target = local_path(target_key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        shutil.copyfile(local_path(source_key), tmp)
        tmp.replace(target)
        return
    client, bucket = _s3_client_and_bucket()
    client.copy({"Bucket": bucket, "Key": source_key}, bucket, target_key)


def exists(key: str) -> bool:
    if _is_local():
        return default_storage.exists(key)
    return _head(key) is not None


def stored_sha256(key: str) -> str | None:
    """The SHA-256 an object was saved with (save_file's metadata; computed for the local backend);
    None when the object is absent or was saved without one."""
    if _is_local():
        path = local_path(key)
        if not path.exists():
            return None
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK_SIZE):
                digest.update(chunk)
        return digest.hexdigest()
    head = _head(key)
    return None if head is None else (head.get("Metadata") or {}).get("sha256")


def size(key: str) -> int:
    if _is_local():
        return default_storage.size(key)
    head = _head(key)
    if head is None:
        raise FileNotFoundError(key)
    return int(head["ContentLength"])


def open_range(*, key: str, start: int, end: int) -> Iterator[bytes]:
    """Yield bytes ``start``..``end`` (inclusive) of ``key`` in chunks."""
    if _is_local():
        return _local_range(local_path(key), start, end)
    client, bucket = _s3_client_and_bucket()
    response = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}")
    body = response["Body"]
    return body.iter_chunks(chunk_size=CHUNK_SIZE)


def _local_range(path: Path, start: int, end: int) -> Iterator[bytes]:
    remaining = end - start + 1
    with path.open("rb") as handle:
        handle.seek(start)
        while remaining > 0:
            chunk = handle.read(min(CHUNK_SIZE, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


def list_keys(prefix: str) -> list[str]:
    """Every key under ``prefix`` (which should end with a slash)."""
    if _is_local():
        root = local_path(prefix.rstrip("/") or ".")
        if not root.exists():
            return []
        base = Path(default_storage.location)  # type: ignore[attr-defined]  # FileSystemStorage's, when local
        return sorted(str(p.relative_to(base)) for p in root.rglob("*") if p.is_file())
    client, bucket = _s3_client_and_bucket()
    keys: list[str] = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


def delete_prefix(prefix: str) -> int:
    """Delete every object under ``prefix``; returns how many were deleted."""
    keys = list_keys(prefix)
    if _is_local():
        for key in keys:
            local_path(key).unlink(missing_ok=True)
        return len(keys)
    client, bucket = _s3_client_and_bucket()
    for start in range(0, len(keys), 1000):
        batch = keys[start : start + 1000]
        client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
    return len(keys)


def read_bytes(key: str, *, limit: int = 10 * 1024 * 1024) -> bytes:
    """Read a small object (an index or a manifest) whole; refuse anything over ``limit``."""
    total = size(key)
    if total > limit:
        raise ValueError(f"{key} is {total} bytes; read_bytes is for small objects")
    return b"".join(open_range(key=key, start=0, end=max(0, total - 1))) if total else b""
