"""The BD-rate of bench/ladder_quality.py on curves whose answer is known."""

from __future__ import annotations

import math

import pytest

from bench.bjontegaard import bd_rate, polyfit, rate_at

# (kbit/s, SSIM dB): four CRF points of a plausible rung, quality growing with rate.
ANCHOR = [(400.0, 14.1), (620.0, 15.9), (950.0, 17.4), (1500.0, 18.6)]


def test_identical_curves_differ_by_nothing() -> None:
    assert bd_rate(ANCHOR, ANCHOR) == pytest.approx(0.0, abs=1e-12)


def test_every_rate_times_0_9_is_ten_percent_fewer_bits() -> None:
    test = [(rate * 0.9, quality) for rate, quality in ANCHOR]
    assert bd_rate(ANCHOR, test) == pytest.approx(-0.10, abs=1e-9)
    assert bd_rate(test, ANCHOR) == pytest.approx(1 / 0.9 - 1, abs=1e-9)


def test_a_curve_sampled_elsewhere_on_the_same_line_differs_by_nothing() -> None:
    # log(rate) = 0.5 * quality: both curves lie on it, at different qualities (shared range 15-17).
    anchor = [(math.exp(0.5 * q), q) for q in (13.0, 15.0, 17.0, 19.0)]
    test = [(math.exp(0.5 * q), q) for q in (14.0, 15.5, 16.0, 17.0)]
    assert bd_rate(anchor, test) == pytest.approx(0.0, abs=1e-9)


def test_twice_the_rate_over_the_shared_range_only() -> None:
    anchor = [(math.exp(0.5 * q), q) for q in (13.0, 15.0, 17.0, 19.0)]
    test = [(2 * math.exp(0.5 * q), q) for q in (16.0, 17.0, 18.0, 21.0)]
    assert bd_rate(anchor, test) == pytest.approx(1.0, abs=1e-9)


def test_curves_without_a_shared_quality_range_have_no_bd_rate() -> None:
    higher = [(rate, quality + 10) for rate, quality in ANCHOR]
    assert bd_rate(ANCHOR, higher) is None
    assert bd_rate(ANCHOR, ANCHOR[:1]) is None


def test_polyfit_recovers_a_cubic_through_four_points() -> None:
    xs = [-1.0, -0.2, 0.4, 1.0]
    ys = [2 - x + 0.5 * x**2 + 3 * x**3 for x in xs]
    assert polyfit(xs, ys, degree=3) == pytest.approx([2, -1, 0.5, 3], abs=1e-9)


def test_rate_at_interpolates_in_log_rate_and_refuses_to_extrapolate() -> None:
    assert rate_at(ANCHOR, 15.9) == pytest.approx(620.0)
    assert rate_at(ANCHOR, (14.1 + 15.9) / 2) == pytest.approx(math.sqrt(400 * 620))
    assert rate_at(ANCHOR, 20.0) is None
