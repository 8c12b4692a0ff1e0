"""Fixtures shared by the tests of reading stored sources (test_source_reader.py, test_probe_copy.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from media_pipeline import storage
from tests.storage_backends import use_local_storage


@pytest.fixture(params=["local", "s3"])
def stored_source(request: pytest.FixtureRequest, settings: Any, tmp_path: Path) -> Callable[[Path], str]:
    """Store a local file in the backend under test (both, one after the other); returns its key."""
    if request.param == "s3":
        request.getfixturevalue("s3")  # skipped outside the harness
        prefix = request.getfixturevalue("key_prefix")
    else:
        use_local_storage(settings, tmp_path / "storage")
        prefix = "lessons/local"
    assert storage.is_local() is (request.param == "local")

    def store(path: Path) -> str:
        key = f"{prefix}/{path.name}-source"
        storage.save_file(key=key, source=path)
        return key

    return store
