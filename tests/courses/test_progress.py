"""Watched-seconds bitmap maths (pure)."""

from __future__ import annotations

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
