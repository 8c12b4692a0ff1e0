"""QoE and pipeline metrics on /metrics, with label values kept to a fixed set."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client
from prometheus_client import REGISTRY
from pytest_django import Settings

from analytics import ingest
from tests.analytics.test_beacons import body

pytestmark = pytest.mark.django_db

STARTED_AND_STALLED = [
    {"type": "play_request", "t": 0},
    {"type": "first_frame", "t": 1500},
    {"type": "rebuffer_start", "t": 4000},
    {"type": "rebuffer_end", "t": 4500},
    {"type": "heartbeat", "t": 10000},
]


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture(autouse=True)
def _clean(settings: Settings) -> None:
    settings.QOE_PATHWAYS = ["cdn-a", "origin"]
    for key in ingest.client().scan_iter("qoe:rl:*"):
        ingest.client().delete(key)


def test_beacons_feed_qoe_metrics_with_bounded_labels() -> None:
    labels = {"pathway": "cdn-a", "device": "desktop", "browser": "Chrome"}
    before = {
        "views": _value("qoe_views_total", **labels),
        "other": _value("qoe_views_total", pathway="other", device="desktop", browser="other"),
        "startups": _value("qoe_startup_seconds_count", pathway="cdn-a"),
        "le2": _value("qoe_startup_seconds_bucket", pathway="cdn-a", le="2.0"),
        "stall": _value("qoe_rebuffer_seconds_total", pathway="cdn-a"),
        "watch": _value("qoe_watch_seconds_total", pathway="cdn-a"),
    }
    client = Client()
    client.post("/api/v1/qoe/events/", body(events=STARTED_AND_STALLED), content_type="text/plain")
    client.post(
        "/api/v1/qoe/events/",
        body(pathway="evil-cdn-123", browser="MyBrowser/1.0", events=[{"type": "play_request", "t": 0}]),
        content_type="text/plain",
    )
    assert _value("qoe_views_total", **labels) - before["views"] == 1
    assert _value("qoe_views_total", pathway="other", device="desktop", browser="other") - before["other"] == 1
    assert _value("qoe_views_total", pathway="evil-cdn-123", device="desktop", browser="MyBrowser/1.0") == 0
    assert _value("qoe_startup_seconds_count", pathway="cdn-a") - before["startups"] == 1
    assert _value("qoe_startup_seconds_bucket", pathway="cdn-a", le="2.0") - before["le2"] == 1  # 1.5 s
    assert _value("qoe_rebuffer_seconds_total", pathway="cdn-a") - before["stall"] == pytest.approx(0.5)
    assert _value("qoe_watch_seconds_total", pathway="cdn-a") - before["watch"] == pytest.approx(10.0)
    page = Client().get("/metrics").content.decode()
    assert 'qoe_views_total{browser="Chrome",device="desktop",pathway="cdn-a"}' in page


@pytest.mark.django_db(transaction=True)
def test_queue_depth_and_encode_failures_are_exported(key_prefix: str, tmp_path: Path) -> None:
    import dramatiq

    from media_pipeline import services

    broker = dramatiq.get_broker()
    broker.flush_all()
    failures_before = _value("media_asset_failures_total", step="probe")
    asset = services.asset_create(key_prefix=key_prefix)
    bogus = tmp_path / "x.mp4"
    bogus.write_text("not a video\n" * 50)
    with bogus.open("rb") as stream:
        services.asset_upload_source(asset=asset, stream=stream, source_name="x.mp4")  # enqueues the probe
    page = Client().get("/metrics").content.decode()
    assert 'dramatiq_queue_depth{queue="quick"} 1.0' in page
    services.asset_probe(asset_id=asset.pk)
    assert _value("media_asset_failures_total", step="probe") - failures_before == 1
    broker.flush_all()
