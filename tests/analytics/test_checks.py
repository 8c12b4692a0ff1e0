"""The deploy check on the harness's Redis: noeviction and a maxmemory, or a warning that says why."""

from __future__ import annotations

import pytest
from pytest_django import Settings

from analytics import ingest
from analytics.checks import redis_never_evicts

pytestmark = pytest.mark.services  # the harness's Redis


def test_a_redis_that_refuses_writes_when_full_passes() -> None:
    assert redis_never_evicts() == []


def test_an_evicting_or_unbounded_redis_is_reported() -> None:
    client = ingest.client()
    before = client.config_get("maxmemory*")
    try:
        client.config_set("maxmemory-policy", "allkeys-lru")
        assert [m.id for m in redis_never_evicts()] == ["analytics.W001"]
        client.config_set("maxmemory", "0")
        assert [m.id for m in redis_never_evicts()] == ["analytics.W001", "analytics.W002"]
    finally:
        client.config_set("maxmemory-policy", before["maxmemory-policy"])
        client.config_set("maxmemory", before["maxmemory"])
    assert redis_never_evicts() == []


def test_a_redis_that_cannot_be_asked_is_skipped(settings: Settings) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    assert redis_never_evicts() == []
