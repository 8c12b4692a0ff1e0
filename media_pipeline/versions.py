"""The version store: every version under ``<key_prefix>/v<N>/``, indexed by ``files.json`` written last.

An index means the version is complete: it lists every object's size and SHA-256 (and, under
``meta``, what the version holds), so a rerun that finds a complete index does nothing again, and
publishing checks the objects against it. See docs/adr/0002.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from django.conf import settings

from media_pipeline import storage

INDEX_NAME = "files.json"


def work_dir() -> tempfile.TemporaryDirectory[str]:
    """A scratch folder under MEDIA_WORK_DIR, removed when the ``with`` block ends."""
    return tempfile.TemporaryDirectory(prefix="media-", dir=settings.MEDIA_WORK_DIR)


def sha256(path: Path) -> str:
    """The file's SHA-256, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def upload_version(
    out: Path,
    prefix: str,
    *,
    meta: dict[str, Any] | None = None,
    copied: dict[str, dict[str, Any]] | None = None,
    concurrency: int = 1,
) -> None:
    """Upload every file in ``out`` under ``prefix``, then the index last: an index means the version
    is complete. ``copied`` lists objects already placed under ``prefix`` (with their index entries);
    ``meta`` goes in the index. ``concurrency`` objects are hashed and uploaded at a time."""
    paths = sorted(p for p in out.rglob("*") if p.is_file())
    if concurrency > 1:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sha256") as pool:
            digests = list(pool.map(sha256, paths))
    else:
        digests = [sha256(path) for path in paths]
    names = [path.relative_to(out).as_posix() for path in paths]
    storage.save_files(
        [(prefix + name, path, digest) for name, path, digest in zip(names, paths, digests, strict=True)],
        concurrency=concurrency,
    )
    files: dict[str, dict[str, Any]] = dict(copied or {})
    for name, path, digest in zip(names, paths, digests, strict=True):
        files[name] = {"size": path.stat().st_size, "sha256": digest}
    write_index(out.parent, prefix, files=files, meta=meta)


def write_index(scratch: Path, prefix: str, *, files: dict[str, dict[str, Any]], meta: dict[str, Any] | None) -> None:
    """Upload the index of objects already under ``prefix`` (name -> size and sha256): the version is
    complete from now on. ``scratch`` is a local folder for the file on its way."""
    index_path = scratch / INDEX_NAME
    body: dict[str, Any] = {"files": files} if meta is None else {"files": files, "meta": meta}
    index_path.write_text(json.dumps(body, indent=1, sort_keys=True))
    storage.save_file(key=prefix + INDEX_NAME, source=index_path, sha256=sha256(index_path))


def read_index(prefix: str) -> dict[str, dict[str, Any]] | None:
    """The version's objects (name -> size and sha256); None when it has no index (not complete)."""
    if not storage.exists(prefix + INDEX_NAME):
        return None
    return json.loads(storage.read_bytes(prefix + INDEX_NAME))["files"]


def read_meta(prefix: str) -> dict[str, Any]:
    """The index's description of the version (media fingerprint, text tracks, extras); {} when older."""
    if not storage.exists(prefix + INDEX_NAME):
        return {}
    return json.loads(storage.read_bytes(prefix + INDEX_NAME)).get("meta", {})


def missing_objects(prefix: str, index: dict[str, dict[str, Any]]) -> list[str]:
    """The indexed objects absent from storage or of another size, sorted."""
    return sorted(
        name
        for name, meta in index.items()
        if not storage.exists(prefix + name) or storage.size(prefix + name) != meta["size"]
    )


def index_complete(prefix: str) -> bool:
    """The version has an index and every object it lists is in storage at its size."""
    index = read_index(prefix)
    return index is not None and not missing_objects(prefix, index)
