"""The start estimate from a learner's recent throughput reports (pure)."""

from __future__ import annotations

from analytics import throughput
from analytics.throughput import DEFAULT, StartEstimate, history_entry, last_throughput, start_estimate

NOW = 1_800_000_000.0


def _entries(*reports: tuple[str, float, float]) -> list[str]:
    """Newest first, as LPUSH keeps them: (view, kbps, seconds ago)."""
    return [history_entry(view_id=view, kbps=kbps, now=NOW - ago) for view, kbps, ago in reports]


def test_no_history_gives_the_conservative_default() -> None:
    assert start_estimate([], now=NOW) == DEFAULT == StartEstimate(kbps=1000, basis="default")


def test_each_view_counts_once_with_its_newest_report_and_the_median_is_discounted() -> None:
    entries = _entries(("a", 3000, 10), ("a", 9000, 20), ("b", 2000, 100), ("c", 5000, 200))
    # Views a=3000 (newest), b=2000, c=5000: median 3000, times 0.8.
    assert start_estimate(entries, now=NOW) == StartEstimate(kbps=2400, basis="history")


def test_only_the_last_five_views_count() -> None:
    recent = [(f"v{i}", 1000.0, float(i)) for i in range(5)]
    older = [(f"old{i}", 50_000.0, 100.0 + i) for i in range(10)]
    assert start_estimate(_entries(*recent, *older), now=NOW) == StartEstimate(kbps=800, basis="history")


def test_reports_older_than_a_week_and_malformed_entries_are_ignored() -> None:
    stale = _entries(("a", 4000, throughput.HISTORY_MAX_AGE_SECONDS + 1))
    assert start_estimate(stale + ["garbage", "x y", "v nan 1", "v 0 1800000000"], now=NOW) == DEFAULT


def test_a_lie_is_bounded_both_ways() -> None:
    assert start_estimate(_entries(("a", 1_000_000, 1)), now=NOW) == StartEstimate(kbps=8000, basis="history")
    assert start_estimate(_entries(("a", 1, 1)), now=NOW) == StartEstimate(kbps=300, basis="history")


def test_the_last_report_of_a_batch_is_taken() -> None:
    events = [
        {"type": "heartbeat", "throughput_kbps": 900.0},
        {"type": "pause"},
        {"type": "heartbeat", "throughput_kbps": 1200.0},
    ]
    assert last_throughput(events) == 1200.0
    assert last_throughput([{"type": "heartbeat"}]) is None
