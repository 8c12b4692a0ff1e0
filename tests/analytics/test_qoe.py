"""Every QoE metric against values worked out by hand (see the comments)."""

from __future__ import annotations

import pytest

from analytics.qoe import Event, aggregate, percentile, summarize_view


def E(kind: str, t: float, **kw: object) -> Event:  # noqa: N802 - reads like a table
    return Event(type=kind, t=t, **kw)  # type: ignore[arg-type]


# A: starts in 1 s, one 2 s stall, switches 360p@800 -> 720p@3000, pauses 10 s, ends at 51 s.
VIEW_A = [
    E("play_request", 0), E("rendition", 100, bitrate_kbps=800, height=360), E("first_frame", 1000),
    E("rebuffer_start", 11000), E("rebuffer_end", 13000), E("rendition", 21000, bitrate_kbps=3000, height=720),
    E("pause", 31000), E("play", 41000), E("end", 51000),
]  # fmt: skip
# B: starts in 3 s, then a fatal error 2 s later.
VIEW_B = [E("play_request", 0), E("first_frame", 3000), E("error", 5000, fatal=True, code="manifestLoadError")]
# C: the viewer gives up after 4 s without a first frame.
VIEW_C = [E("play_request", 0), E("end", 4000)]
# D: 480p@1400, a 1 s seek (not a stall), then a 0.5 s stall.
VIEW_D = [
    E("rendition", 0, bitrate_kbps=1400, height=480), E("play_request", 0), E("first_frame", 500),
    E("seeking", 2500), E("seeked", 3500), E("rebuffer_start", 4500), E("rebuffer_end", 5000), E("end", 6500),
]  # fmt: skip


def test_view_a_accounts_every_state() -> None:
    s = summarize_view(VIEW_A)
    assert (s.requested, s.started, s.failed, s.exited_before_start) == (True, True, False, False)
    assert s.startup_ms == 1000
    # starting 1000 + playing 10000 + stall 2000 + playing 8000 + 10000 + (paused 10000 not counted) + 10000
    assert s.watch_ms == 41000
    assert s.playing_ms == 38000
    assert (s.rebuffer_ms, s.rebuffer_count) == (2000, 1)
    assert s.bitrate_ms == {800: 18000, 3000: 20000}
    assert s.height_ms == {360: 18000, 720: 20000}


def test_view_events_arrive_out_of_order_but_count_the_same() -> None:
    assert summarize_view(list(reversed(VIEW_A))) == summarize_view(VIEW_A)


def test_failed_view() -> None:
    s = summarize_view(VIEW_B)
    assert (s.started, s.failed, s.startup_ms, s.watch_ms, s.error_codes) == (
        True,
        True,
        3000,
        5000,
        ["manifestLoadError"],
    )


def test_exit_before_start() -> None:
    s = summarize_view(VIEW_C)
    assert (s.started, s.exited_before_start, s.startup_ms, s.watch_ms) == (False, True, None, 4000)


def test_seeking_is_not_rebuffering() -> None:
    s = summarize_view(VIEW_D)
    assert (s.watch_ms, s.playing_ms, s.rebuffer_ms, s.rebuffer_count) == (5500, 4500, 500, 1)


def test_nothing_after_the_end_counts() -> None:
    s = summarize_view([*VIEW_C, E("first_frame", 5000), E("heartbeat", 9000)])
    assert (s.started, s.watch_ms) == (False, 4000)


def test_aggregate_over_four_views() -> None:
    agg = aggregate([summarize_view(v) for v in (VIEW_A, VIEW_B, VIEW_C, VIEW_D)])
    assert agg.views == 4
    assert agg.failure_pct == 25.0  # B
    assert agg.exits_before_start_pct == 25.0  # C
    assert agg.startup_p50_ms == 1000  # of [500, 1000, 3000]
    assert agg.startup_p95_ms == pytest.approx(2800)  # 1000 + 0.9 * (3000 - 1000)
    assert agg.watch_ms == 55500  # 41000 + 5000 + 4000 + 5500
    assert agg.rebuffer_pct == pytest.approx(100 * 2500 / 55500)  # 4.5045 %
    assert agg.rebuffers_per_minute == pytest.approx(2 / (55500 / 60000))  # 2.1622
    # (800 * 18000 + 3000 * 20000 + 1400 * 4500) / 42500
    assert agg.average_bitrate_kbps == pytest.approx(80_700_000 / 42500)  # 1898.82
    assert agg.rendition_mix == pytest.approx(
        {360: 100 * 18000 / 42500, 480: 100 * 4500 / 42500, 720: 100 * 20000 / 42500}
    )


def test_aggregate_of_nothing_is_empty_not_zero() -> None:
    agg = aggregate([])
    assert (agg.views, agg.failure_pct, agg.startup_p95_ms, agg.rebuffer_pct, agg.average_bitrate_kbps) == (
        0, None, None, None, None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([5], 95, 5), ([1, 2, 3, 4], 50, 2.5), ([1, 2, 3, 4, 5], 95, 4.8), ([10, 0], 0, 0), ([], 50, None)],
)
def test_percentile_interpolates_between_ranks(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == (pytest.approx(expected) if expected is not None else None)
