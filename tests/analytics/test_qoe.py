"""Every QoE definition (analytics/qoe.py) against values worked out by hand (see the comments).

Each view is sent whole, as one batch, so its counters are the view's own. The player sends a
heartbeat with its current rendition while playing and with every flush; the views carry one where
a playing stretch ends, since only time that ends at a heartbeat or a rendition switch is attributed
to a rendition."""

from __future__ import annotations

from typing import Any

import pytest

from analytics.qoe import (
    average_bitrate_kbps,
    batch_contributions,
    exits_before_start_pct,
    failure_pct,
    percentile,
    rebuffer_pct,
    rebuffers_per_minute,
    rendition_mix,
    rendition_played_ms,
)


def E(kind: str, t: float, **kw: object) -> dict[str, Any]:  # capital E: reads like a table
    return {"type": kind, "t": t, **kw}


# A: starts in 1 s, one 2 s stall, switches 360p@800 -> 720p@3000, pauses 10 s, ends at 51 s.
VIEW_A = [
    E("play_request", 0), E("rendition", 100, bitrate_kbps=800, height=360), E("first_frame", 1000),
    E("heartbeat", 11000), E("rebuffer_start", 11000), E("rebuffer_end", 13000),
    E("rendition", 21000, bitrate_kbps=3000, height=720), E("heartbeat", 31000), E("pause", 31000), E("play", 41000),
    E("heartbeat", 51000), E("end", 51000),
]  # fmt: skip
# B: starts in 3 s, then a fatal error 2 s later.
VIEW_B = [E("play_request", 0), E("first_frame", 3000), E("error", 5000, fatal=True, code="manifestLoadError")]
# C: the viewer gives up after 4 s without a first frame.
VIEW_C = [E("play_request", 0), E("end", 4000)]
# D: 480p@1400, a 1 s seek (not a stall), then a 0.5 s stall.
VIEW_D = [
    E("rendition", 0, bitrate_kbps=1400, height=480), E("play_request", 0), E("first_frame", 500),
    E("heartbeat", 2500), E("seeking", 2500), E("seeked", 3500), E("heartbeat", 4500), E("rebuffer_start", 4500),
    E("rebuffer_end", 5000), E("heartbeat", 6500), E("end", 6500),
]  # fmt: skip


def _flags(c: dict[str, float]) -> tuple[bool, bool, bool, bool]:
    """(requested, started, failed, exited before start)"""
    return bool(c.get("plays")), bool(c.get("starts")), bool(c.get("failures")), bool(c.get("exits"))


def test_view_a_accounts_every_state() -> None:
    c = batch_contributions(VIEW_A)
    assert _flags(c) == (True, True, False, False)
    assert c["startup_ms"] == 1000
    # starting 1000 + playing 10000 + stall 2000 + playing 8000 + 10000 + (paused 10000 not counted) + 10000
    assert c["watch_ms"] == 41000
    assert c["bitrate_weighted_ms"] == 38000  # playing time, every millisecond in a known rendition
    assert (c["rebuffer_ms"], c["rebuffers"]) == (2000, 1)
    assert c["bitrate_weighted"] == 800 * 18000 + 3000 * 20000
    assert rendition_played_ms(c) == {"360": 18000, "720": 20000}


def test_view_events_arrive_out_of_order_but_count_the_same() -> None:
    assert batch_contributions(list(reversed(VIEW_A))) == batch_contributions(VIEW_A)


def test_failed_view() -> None:
    c = batch_contributions(VIEW_B)
    assert (_flags(c)[1:3], c["startup_ms"], c["watch_ms"]) == ((True, True), 3000, 5000)


def test_exit_before_start() -> None:
    c = batch_contributions(VIEW_C)
    assert (_flags(c)[1], _flags(c)[3], "startup_ms" in c, c["watch_ms"]) == (False, True, False, 4000)


def test_seeking_is_not_rebuffering() -> None:
    c = batch_contributions(VIEW_D)
    assert (c["watch_ms"], c["bitrate_weighted_ms"], c["rebuffer_ms"], c["rebuffers"]) == (5500, 4500, 500, 1)


def test_nothing_after_the_end_counts() -> None:
    c = batch_contributions([*VIEW_C, E("first_frame", 5000), E("heartbeat", 9000)])
    assert (_flags(c)[1], c["watch_ms"]) == (False, 4000)


def test_a_batch_from_the_middle_of_a_view_counts_from_its_first_event() -> None:
    # No play request: the player was playing when the batch began (a heartbeat says so).
    c = batch_contributions([E("heartbeat", 20000, bitrate_kbps=800, height=360), E("pause", 24000),
                             E("play", 30000), E("heartbeat", 32000, bitrate_kbps=800, height=360)])  # fmt: skip
    assert (c.get("plays", 0), c["watch_ms"], rendition_played_ms(c)) == (0, 6000, {"360": 2000})


def test_figures_over_four_views() -> None:
    totals: dict[str, float] = {}
    startups = []
    for view in (VIEW_A, VIEW_B, VIEW_C, VIEW_D):
        c = batch_contributions(view)
        for name, value in c.items():
            totals[name] = totals.get(name, 0) + value
        if "startup_ms" in c:
            startups.append(c["startup_ms"])
    assert totals["plays"] == 4
    assert failure_pct(totals) == 25.0  # B
    assert exits_before_start_pct(totals) == 25.0  # C
    assert percentile(startups, 50) == 1000  # of [500, 1000, 3000]
    assert percentile(startups, 95) == pytest.approx(2800)  # 1000 + 0.9 * (3000 - 1000)
    assert totals["watch_ms"] == 55500  # 41000 + 5000 + 4000 + 5500
    assert rebuffer_pct(totals) == pytest.approx(100 * 2500 / 55500)  # 4.5045 %
    assert rebuffers_per_minute(totals) == pytest.approx(2 / (55500 / 60000))  # 2.1622
    # (800 * 18000 + 3000 * 20000 + 1400 * 4500) / 42500
    assert average_bitrate_kbps(totals) == pytest.approx(80_700_000 / 42500)  # 1898.82
    assert rendition_mix(rendition_played_ms(totals)) == pytest.approx(
        {"360": 100 * 18000 / 42500, "480": 100 * 4500 / 42500, "720": 100 * 20000 / 42500}
    )


def test_figures_of_nothing_are_empty_not_zero() -> None:
    nothing: dict[str, float] = {}
    assert (failure_pct(nothing), percentile([], 95), rebuffer_pct(nothing), average_bitrate_kbps(nothing)) == (
        None, None, None, None,
    )  # fmt: skip
    assert (rebuffers_per_minute(nothing), exits_before_start_pct(nothing), rendition_mix({})) == (None, None, {})


def test_average_bitrate_without_playing_time_is_the_mean_of_the_renditions_reported() -> None:
    assert average_bitrate_kbps({"bitrate_sum": 3800, "bitrate_n": 2}) == 1900
    assert average_bitrate_kbps({"bitrate_sum": 3800, "bitrate_n": 2, "bitrate_weighted": 8000,
                                 "bitrate_weighted_ms": 10}) == 800  # fmt: skip


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([5], 95, 5), ([1, 2, 3, 4], 50, 2.5), ([1, 2, 3, 4, 5], 95, 4.8), ([10, 0], 0, 0), ([], 50, None)],
)
def test_percentile_interpolates_between_ranks(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == (pytest.approx(expected) if expected is not None else None)
