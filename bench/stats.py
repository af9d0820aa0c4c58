"""Percentiles and A/B ratios: the arithmetic behind every figure `make bench` quotes."""

from __future__ import annotations

import math
import statistics


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100), linear interpolation between closest ranks; nan if empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * min(100.0, max(0.0, p)) / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median_ratio(numerators: list[float], denominators: list[float]) -> float:
    """Median of the per-round ratios a_i / b_i (rounds measured back to back, A/B alternating)."""
    if len(numerators) != len(denominators) or not numerators:
        raise ValueError("need one denominator per numerator, at least one round")
    ratios = [a / b for a, b in zip(numerators, denominators, strict=True) if b > 0]
    return statistics.median(ratios) if ratios else float("nan")


def spread(values: list[float]) -> float:
    """max - min: 0 when perfectly balanced."""
    return max(values) - min(values) if values else float("nan")
