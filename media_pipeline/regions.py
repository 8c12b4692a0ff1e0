"""Storage regions and the object stores behind them.

A region is one bucket (or local folder) plus the URL that serves it to viewers. Regions come from
settings.STORAGE_REGIONS (see config/storage_regions.py); the primary one is also Django's default
storage. An ``ObjectStore`` is the few operations replication needs, streamed, never a whole object
in memory: head (size and the SHA-256 recorded in metadata), list, ranged read, streamed put,
server-side copy, delete.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple, Protocol

from django.conf import settings

from core.streams import Readable

CHUNK_SIZE = 1024 * 1024
# Objects above this go up as multipart uploads of this part size (bounded memory per copy).
PART_SIZE = 16 * 1024 * 1024
SHA256_META = "sha256"


@dataclass(frozen=True)
class Region:
    name: str
    backend: str
    primary: bool
    base_url: str = ""
    countries: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)


def regions_all() -> list[Region]:
    """Every configured region, primary first."""
    return [
        Region(
            name=item["name"],
            backend=item["backend"],
            primary=bool(item.get("primary")),
            base_url=item.get("base_url", ""),
            countries=tuple(item.get("countries", ())),
            config=item,
        )
        for item in settings.STORAGE_REGIONS
    ]


def region_primary() -> Region:
    return next(region for region in regions_all() if region.primary)


def region_get(name: str) -> Region | None:
    return next((region for region in regions_all() if region.name == name), None)


class ObjectInfo(NamedTuple):
    size: int
    sha256: str | None  # None where the store keeps no metadata (local folders)


class ObjectStore(Protocol):
    region: Region

    def head(self, key: str) -> ObjectInfo | None: ...
    def list(self, prefix: str) -> dict[str, int]: ...
    def read(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]: ...
    def open(self, key: str) -> IO[bytes]: ...
    def put(self, key: str, stream: Readable, *, sha256: str, content_type: str) -> None: ...
    def shares_store_with(self, other: ObjectStore) -> bool: ...
    def copy_within(self, source: ObjectStore, key: str, *, sha256: str, content_type: str) -> None: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def delete(self, key: str) -> None: ...


# --- S3 --------------------------------------------------------------------------------------------


class S3Store:
    def __init__(self, region: Region) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.region = region
        cfg = region.config
        self.bucket: str = cfg["bucket"]
        self._identity = (cfg.get("endpoint_url"), cfg["access_key"])
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=cfg.get("endpoint_url"),
            region_name=cfg.get("region_name"),
            aws_access_key_id=cfg["access_key"],
            aws_secret_access_key=cfg["secret_key"],
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": cfg.get("addressing_style", "path")},
                # A region that is down must fail fast; the caller retries with backoff.
                connect_timeout=settings.REPLICATION_CONNECT_TIMEOUT_SECONDS,
                read_timeout=settings.REPLICATION_READ_TIMEOUT_SECONDS,
                retries={"max_attempts": 2, "mode": "standard"},
                max_pool_connections=settings.REPLICATION_CONCURRENCY + 4,
            ),
        )
        # We copy many objects side by side; each transfer itself stays single-threaded.
        self._transfer = TransferConfig(
            multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, max_concurrency=1, use_threads=False
        )

    def head(self, key: str) -> ObjectInfo | None:
        from botocore.exceptions import ClientError

        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ObjectInfo(response["ContentLength"], response.get("Metadata", {}).get(SHA256_META))

    def list(self, prefix: str) -> dict[str, int]:
        found: dict[str, int] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found.update((item["Key"], item["Size"]) for item in page.get("Contents", []))
        return found

    def read(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        extra = {"Range": f"bytes={start}-{'' if end is None else end}"} if start or end is not None else {}
        body = self.client.get_object(Bucket=self.bucket, Key=key, **extra)["Body"]
        return body.iter_chunks(chunk_size=CHUNK_SIZE)

    def open(self, key: str) -> IO[bytes]:
        """The object as a readable stream (read(n) as bytes arrive); FileNotFoundError if absent."""
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise FileNotFoundError(f"{key} is not in region {self.region.name}") from exc
            raise

    def put(self, key: str, stream: Readable, *, sha256: str, content_type: str) -> None:
        self.client.upload_fileobj(
            stream,
            self.bucket,
            key,
            ExtraArgs={"ContentType": content_type, "Metadata": {SHA256_META: sha256}},
            Config=self._transfer,
        )

    def shares_store_with(self, other: ObjectStore) -> bool:
        """Same endpoint and credentials: objects can be copied server-side, no bytes through us."""
        return isinstance(other, S3Store) and other._identity == self._identity

    def copy_within(self, source: ObjectStore, key: str, *, sha256: str, content_type: str) -> None:
        assert isinstance(source, S3Store)
        self.client.copy(
            {"Bucket": source.bucket, "Key": key},
            self.bucket,
            key,
            ExtraArgs={"ContentType": content_type, "Metadata": {SHA256_META: sha256}, "MetadataDirective": "REPLACE"},
            Config=self._transfer,
        )

    def delete_prefix(self, prefix: str) -> int:
        keys = sorted(self.list(prefix))
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


# --- Local folder ----------------------------------------------------------------------------------


class LocalStore:
    """A folder as a region: the embedded default, and a cheap second region on one machine."""

    def __init__(self, region: Region) -> None:
        self.region = region
        self.root = Path(region.config["location"])

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"key {key!r} escapes the region folder")
        return path

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        return ObjectInfo(path.stat().st_size, None) if path.is_file() else None

    def list(self, prefix: str) -> dict[str, int]:
        base = self._path(prefix.rstrip("/") or ".")
        if not base.is_dir():
            return {}
        root = self.root.resolve()
        return {p.relative_to(root).as_posix(): p.stat().st_size for p in base.rglob("*") if p.is_file()}

    def read(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        path = self._path(key)
        remaining = (path.stat().st_size if end is None else end + 1) - start

        def chunks() -> Iterator[bytes]:
            nonlocal remaining
            with path.open("rb") as handle:
                handle.seek(start)
                while remaining > 0 and (chunk := handle.read(min(CHUNK_SIZE, remaining))):
                    remaining -= len(chunk)
                    yield chunk

        return chunks()

    def open(self, key: str) -> IO[bytes]:
        return self._path(key).open("rb")

    def put(self, key: str, stream: Readable, *, sha256: str, content_type: str) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f"{target.name}.{threading.get_ident()}.part")
        with part.open("wb") as out:
            while chunk := stream.read(CHUNK_SIZE):
                out.write(chunk)
        part.replace(target)

    def shares_store_with(self, other: ObjectStore) -> bool:
        return False

    def copy_within(self, source: ObjectStore, key: str, *, sha256: str, content_type: str) -> None:
        raise NotImplementedError("local regions copy through the stream")

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for key in keys:
            self._path(key).unlink(missing_ok=True)
        return len(keys)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


_stores: dict[tuple[str, str], ObjectStore] = {}
_stores_lock = threading.Lock()


def store_for(region: Region) -> ObjectStore:
    """One store (and one connection pool) per region configuration, shared by threads."""
    cache_key = (region.name, repr(sorted(region.config.items())))
    with _stores_lock:
        store = _stores.get(cache_key)
        if store is None:
            store = S3Store(region) if region.backend == "s3" else LocalStore(region)
            _stores[cache_key] = store
        return store
