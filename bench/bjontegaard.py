"""Bjontegaard delta rate (BD-rate): how many more or fewer bits one encoder needs for the same quality.

The classic method (G. Bjontegaard, VCEG-M33, 2001, and its use in every codec comparison since): for
each rate-distortion curve, fit the logarithm of the rate as a cubic polynomial of the quality (four
points: the cubic goes through all of them), integrate both fits over the quality range the two
curves share, and turn the mean difference of log-rates back into a ratio. Negative means the test
encoder needs fewer bits than the anchor for the same quality. Plain Python (no numpy in this
project): a least-squares polynomial of degree at most 3 is a 4x4 linear system.

Quality can be any metric that grows with fidelity (PSNR in dB, SSIM in dB); rates any positive unit,
the same for both curves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Point = tuple[float, float]  # (rate, quality)


def bd_rate(anchor: Sequence[Point], test: Sequence[Point]) -> float | None:
    """The test curve's average rate difference against the anchor at equal quality, as a fraction
    (-0.10: 10 % fewer bits). None when the curves share no quality range or have under two points."""
    if len(anchor) < 2 or len(test) < 2:
        return None
    low = max(min(q for _, q in anchor), min(q for _, q in test))
    high = min(max(q for _, q in anchor), max(q for _, q in test))
    if high <= low:
        return None
    # Both fits use the same change of variable, centred on the shared range, which keeps the normal
    # equations well conditioned (qualities around 20-45 dB raised to the sixth power are not).
    centre, half = (low + high) / 2, (high - low) / 2
    mean_difference = _mean_of_fit(test, centre=centre, half=half) - _mean_of_fit(anchor, centre=centre, half=half)
    return math.exp(mean_difference) - 1


def _mean_of_fit(points: Sequence[Point], *, centre: float, half: float) -> float:
    """Mean of the fitted log-rate over the quality range centre +/- half (x from -1 to 1)."""
    xs = [(q - centre) / half for _, q in points]
    ys = [math.log(rate) for rate, _ in points]
    coefficients = polyfit(xs, ys, degree=min(3, len(points) - 1))
    # The mean over [-1, 1] of sum c_k x^k: odd powers integrate to 0, x^k to 2 / (k + 1).
    return sum(c / (k + 1) for k, c in enumerate(coefficients) if k % 2 == 0)


def polyfit(xs: Sequence[float], ys: Sequence[float], *, degree: int) -> list[float]:
    """Least-squares polynomial coefficients, lowest power first (normal equations, Gaussian
    elimination with partial pivoting)."""
    size = degree + 1
    matrix = [[sum(x ** (i + j) for x in xs) for j in range(size)] for i in range(size)]
    vector = [sum(y * x**i for x, y in zip(xs, ys, strict=True)) for i in range(size)]
    for column in range(size):
        pivot = max(range(column, size), key=lambda row: abs(matrix[row][column]))
        if abs(matrix[pivot][column]) < 1e-12:
            raise ValueError("the points do not determine a polynomial of this degree (repeated qualities?)")
        matrix[column], matrix[pivot] = matrix[pivot], matrix[column]
        vector[column], vector[pivot] = vector[pivot], vector[column]
        for row in range(column + 1, size):
            factor = matrix[row][column] / matrix[column][column]
            for k in range(column, size):
                matrix[row][k] -= factor * matrix[column][k]
            vector[row] -= factor * vector[column]
    coefficients = [0.0] * size
    for row in reversed(range(size)):
        rest = sum(matrix[row][k] * coefficients[k] for k in range(row + 1, size))
        coefficients[row] = (vector[row] - rest) / matrix[row][row]
    return coefficients


def rate_at(points: Sequence[Point], quality: float) -> float | None:
    """The rate a curve needs for ``quality``, interpolated linearly in log-rate between its two
    nearest points (a single lookup, where a cubic could swing); None outside the measured range."""
    ordered = sorted(points, key=lambda p: p[1])
    for (r0, q0), (r1, q1) in zip(ordered, ordered[1:], strict=False):
        if q0 <= quality <= q1:
            if q1 == q0:
                return min(r0, r1)
            share = (quality - q0) / (q1 - q0)
            return math.exp(math.log(r0) + share * (math.log(r1) - math.log(r0)))
    return None
