"""Watched-seconds bitmap maths (pure)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from courses import progress


def test_a_second_counts_when_at_least_half_of_it_was_played() -> None:
    assert progress.seconds_played([(0.0, 1.4)], total=6) == {0}
    assert progress.seconds_played([(0.0, 1.5)], total=6) == {0, 1}
    assert progress.seconds_played([(0.6, 2.0)], total=6) == {1}
    assert progress.seconds_played([(5.0, 6.0)], total=6) == {5}
    assert progress.seconds_played([(2.2, 2.6)], total=6) == set()


def test_bitmap_merges_and_counts() -> None:
    bitmap = progress.bitmap_merge(b"", {0, 1, 9}, total=10)
    assert bitmap == bytes([0b11, 0b10])
    bitmap = progress.bitmap_merge(bitmap, {1, 2, 50}, total=10)  # 50 is outside the lesson
    assert progress.bitmap_count(bitmap, total=10) == 4


def test_total_seconds_rounds_a_trailing_fraction() -> None:
    assert progress.total_seconds(6.0) == 6
    assert progress.total_seconds(6.02) == 6
    assert progress.total_seconds(6.6) == 7
    assert progress.total_seconds(0.1) == 1


def test_parse_ranges_clamps_to_the_duration_and_rejects_nonsense() -> None:
    assert progress.parse_ranges([[0, 6.5]], duration=6.0) == [(0.0, 6.0)]
    for bad in ([[0, float("nan")]], [[True, 2]], [[0, 1, 2]], [[2, 1]], "x", [[0, 9]]):
        with pytest.raises(ValueError):
            progress.parse_ranges(bad, duration=6.0)


# --- Credit clock -------------------------------------------------------------------------------------
RATE, SLACK = progress.MAX_PLAYBACK_RATE, progress.CREDIT_SLACK_SECONDS
T0 = 1_800_000_000.0  # when the first view token was issued


def _credit(
    claimed: Iterable[int],
    *,
    bitmap: bytes = b"",
    total: int = 600,
    clock: float | None = None,
    issued_at: float = T0,
    now: float,
) -> progress.Credit:
    return progress.credit(claimed=claimed, bitmap=bitmap, total=total, clock=clock, issued_at=issued_at, now=now)


def test_the_fastest_rate_is_the_fastest_speed_the_player_offers() -> None:
    assert progress.PLAYBACK_RATES == (0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
    assert (RATE, SLACK) == (2.0, 2.0)


def test_the_whole_lesson_one_second_into_a_viewing_earns_rate_times_a_second_plus_slack() -> None:
    result = _credit(range(600), now=T0 + 1)
    assert result.seconds == tuple(range(6))  # (1 s + 2 s slack) x 2, earliest seconds first
    assert result.clock == T0 + 3  # run ahead of now by the slack: the next report gets no slack again


def test_seconds_already_credited_cost_nothing_and_new_ones_are_taken_earliest_first() -> None:
    bitmap = progress.bitmap_merge(b"", range(0, 10), total=600)
    result = _credit([50, 3, 40, 9, 41], bitmap=bitmap, now=T0 + 0.5)
    assert result.seconds == (40, 41, 50)
    assert result.clock == T0 + 1.5


def test_unclaimed_time_carries_within_a_viewing_so_a_late_report_is_credited_in_full() -> None:
    first = _credit(range(0, 15), now=T0 + 15)
    assert (first.seconds, first.clock) == (tuple(range(15)), T0 + 7.5)
    # A background tab reported 60 s late, played at 1x all along: 60 more seconds, all due.
    late = _credit(
        range(0, 75), bitmap=progress.bitmap_merge(b"", first.seconds, total=600), clock=first.clock, now=T0 + 75
    )
    assert late.seconds == tuple(range(15, 75))
    assert late.clock == T0 + 37.5


def test_many_reports_at_one_moment_share_one_allowance() -> None:
    clock, bitmap, credited = None, b"", 0
    for tab in range(10):  # ten tabs, each claiming its own tenth of the lesson at T0 + 10 s
        result = _credit(range(tab * 60, tab * 60 + 60), bitmap=bitmap, clock=clock, now=T0 + 10)
        clock, credited = result.clock, credited + len(result.seconds)
        bitmap = progress.bitmap_merge(bitmap, result.seconds, total=600)
    assert credited == (10 + SLACK) * RATE == 24
    # Many reports in quick succession earn no slack each: one more a moment later earns nothing.
    assert _credit(range(600), bitmap=bitmap, clock=clock, now=T0 + 10.001).seconds == ()


def test_an_old_token_brings_back_no_time_and_time_between_viewings_earns_nothing() -> None:
    first = _credit(range(0, 100), now=T0 + 20)  # 44 seconds: (20 + 2) x 2
    assert first.clock == T0 + 22
    # A day later, a new viewing: the clock starts when its token was issued, not at the last report.
    later = T0 + 86_400
    result = _credit(
        range(0, 600),
        clock=first.clock,
        bitmap=progress.bitmap_merge(b"", first.seconds, total=600),
        issued_at=later,
        now=later + 1,
    )
    assert len(result.seconds) == 6 and result.clock == later + 3
    # Replaying the first viewing's token afterwards starts from the clock, not from its issue time.
    replay = _credit(range(0, 600), clock=result.clock, issued_at=T0, now=later + 1)
    assert replay.seconds == ()
    assert replay.clock == later + 3


def test_a_token_issued_in_the_future_counts_from_now() -> None:
    # Another web machine's clock may be ahead by a little; its token never moves the clock past now.
    result = _credit(range(600), issued_at=T0 + 30, now=T0)
    assert (len(result.seconds), result.clock) == (4, T0 + 2)


def test_nothing_claimed_leaves_the_clock_where_the_viewing_started() -> None:
    assert _credit([], now=T0 + 5) == progress.Credit(seconds=(), clock=T0)
    assert _credit([700, -1], total=600, now=T0 + 5).seconds == ()  # outside the lesson


def test_the_player_speed_menu_is_rendered_from_the_rates_credit_allows_for() -> None:
    from courses.templatetags.lesson_format import playback_rates

    assert playback_rates() == ["0.75", "1", "1.25", "1.5", "1.75", "2"]
