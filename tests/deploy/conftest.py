"""The container image, built once per session for every deploy test that runs it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deploy.containers import Image, built_image


@pytest.fixture(scope="session")
def image() -> Iterator[Image]:
    yield from built_image()
