"""Storage streams: the worker's memory must not grow with the size of the objects it moves."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc
from pathlib import Path
from typing import Any

from media_pipeline import storage

MIB = 1024 * 1024


def test_download_streams_a_large_object_in_bounded_memory(s3: Any, key_prefix: str, tmp_path: Path) -> None:
    block = os.urandom(MIB)
    data = io.BytesIO(b"".join(bytes([n]) + block[1:] for n in range(64)))  # 64 MiB, every MiB different
    expected = hashlib.sha256(data.getvalue()).hexdigest()
    key = f"{key_prefix}/source"
    assert storage.save_stream(key=key, stream=data) == 64 * MIB
    del data

    tracemalloc.start()
    try:
        storage.download(key=key, target=tmp_path / "source")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (tmp_path / "source").stat().st_size == 64 * MIB
    assert hashlib.sha256((tmp_path / "source").read_bytes()).hexdigest() == expected
    # A few chunks in flight at most, whatever the object's size (boto3's download_file held tens of MB).
    assert peak < 8 * MIB, f"download peaked at {peak / MIB:.1f} MiB of Python allocations"
    assert not list(tmp_path.glob("*.part"))


def test_every_thread_shares_one_s3_client_and_sees_the_same_objects(s3: Any, key_prefix: str) -> None:
    """Under ASGI each request runs in a thread of its own: a client made per thread cost 150-450 ms."""
    import threading

    key = f"{key_prefix}/object.bin"
    storage.save_stream(key=key, stream=io.BytesIO(b"x" * 1000))
    seen: list[tuple[object, bool, int, bool]] = []

    def look() -> None:
        client, _ = storage.s3_client_and_bucket()
        seen.append((client, storage.exists(key), storage.size(key), storage.exists(key + ".missing")))

    threads = [threading.Thread(target=look) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    main_client, _ = storage.s3_client_and_bucket()
    assert [(client is main_client, *rest) for client, *rest in seen] == [(True, True, 1000, False)] * 3
    try:
        storage.size(key + ".missing")
    except FileNotFoundError:
        pass
    else:
        raise AssertionError("size() of a missing object must raise")
