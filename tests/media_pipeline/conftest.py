"""Fixtures of the media pipeline's tests: real worker processes (tests/worker_processes.py) and sources
stored in either storage backend (test_source_reader.py, test_probe_copy.py), and the generated media
corpus, valid and hostile (tests/media_corpus.py), made once per module that asks for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest

from media_pipeline import storage
from tests.media_corpus import build_hostile, build_valid
from tests.storage_backends import use_local_storage
from tests.worker_processes import WorkerProcess


@pytest.fixture
def workers(worker_env: dict[str, str]) -> Iterator[list[WorkerProcess]]:
    """The worker processes a test starts (it appends them), stopped at its end; the broker's queues
    are emptied before and after. Asks for the module's ``worker_env`` (which skips outside the harness)."""
    broker = dramatiq.get_broker()
    broker.flush_all()
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()
    broker.flush_all()


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


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_valid(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    return build_hostile(tmp_path_factory.mktemp("hostile"))
