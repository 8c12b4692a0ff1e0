import time
from collections.abc import Iterator

import pytest

from analytics import ingest


@pytest.fixture
def ingest_clock_held(monkeypatch: pytest.MonkeyPatch) -> Iterator[float]:
    """Hold the ingest clock still, so every request of a test falls in one rate-limit window.

    The limit counts per fixed window; a test that ran across a window's edge saw its count reset.
    """
    now = time.time()
    monkeypatch.setattr(ingest, "clock", lambda: now)
    yield now
