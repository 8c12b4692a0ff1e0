"""Fixtures of the tests that run real worker processes (tests/worker_processes.py)."""

from __future__ import annotations

from collections.abc import Iterator

import dramatiq
import pytest

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
