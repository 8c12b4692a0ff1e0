"""The Grafana dashboard loads and only queries metrics the platform exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.test import Client

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "qoe-dashboard.json"
PROMQL_FUNCTIONS = {"sum", "rate", "increase", "histogram_quantile", "max", "by", "le"}


def test_every_panel_queries_an_exported_metric(db: None) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "lessons-qoe"
    exported = Client().get("/metrics").content.decode()
    names = set(re.findall(r"^# TYPE (\w+) ", exported, flags=re.MULTILINE))
    # Counters and histograms are exported as <name>_total / <name>_bucket series.
    series = names | {n + "_total" for n in names} | {n + "_bucket" for n in names}
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)) == 6
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            metrics = {w for w in re.findall(r"\b([a-z_]+)\s*[\[{(]", target["expr"]) if w not in PROMQL_FUNCTIONS}
            metrics |= set(re.findall(r"\b(qoe_\w+|media_\w+|dramatiq_\w+)\b", target["expr"]))
            assert metrics, target["expr"]
            assert metrics <= series, f"{panel['title']}: {metrics - series}"


@pytest.fixture(autouse=True)
def _some_traffic(db: None) -> None:
    # Labelled metrics appear on /metrics once observed: send one beacon first.
    from tests.analytics.test_beacons import body

    Client().post(
        "/api/v1/qoe/events/",
        body(events=[{"type": "play_request", "t": 0}, {"type": "first_frame", "t": 5}]),
        content_type="text/plain",
    )
