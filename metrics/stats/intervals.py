"""Intervals for reported numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion (``successes`` of ``n``).

    >>> [round(v, 4) for v in wilson_interval(50, 100)]
    [0.4038, 0.5962]
    """
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_interval(
    values: Sequence[float], *, n_resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (NaN, NaN for fewer than 2 values).

    >>> bootstrap_interval([1.0, 1.0, 1.0])
    (1.0, 1.0)
    """
    data = np.asarray(values, dtype=np.float64)
    if data.size < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(n_resamples, data.size))].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return (float(lo), float(hi))


def bootstrap_difference(
    a: Sequence[float], b: Sequence[float], *, n_resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """mean(a) - mean(b) and its percentile bootstrap interval, resampling a and b independently (unpaired).

    NaN interval when either side has fewer than 2 values.

    >>> bootstrap_difference([2.0, 2.0], [1.0, 1.0, 1.0])
    (1.0, 1.0, 1.0)
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diff = float(x.mean() - y.mean()) if x.size and y.size else math.nan
    if x.size < 2 or y.size < 2:
        return diff, math.nan, math.nan
    rng = np.random.default_rng(seed)
    boot = x[rng.integers(0, x.size, size=(n_resamples, x.size))].mean(axis=1) - y[
        rng.integers(0, y.size, size=(n_resamples, y.size))
    ].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha])
    return diff, float(lo), float(hi)


def spearman_bootstrap(
    x: Sequence[float], y: Sequence[float], *, n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """Spearman correlation of paired values and a percentile bootstrap 95% interval (resampling pairs)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return (math.nan, math.nan, math.nan)
    rho = float(spearmanr(a, b).statistic)
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_resamples):
        idx = rng.integers(0, a.size, a.size)
        if np.ptp(a[idx]) > 0 and np.ptp(b[idx]) > 0:
            stats.append(spearmanr(a[idx], b[idx]).statistic)
    if not stats:
        return (rho, math.nan, math.nan)
    lo, hi = np.quantile(stats, [0.025, 0.975])
    return (rho, float(lo), float(hi))
