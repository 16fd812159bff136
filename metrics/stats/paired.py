"""Paired inference for two models scored on the same images: an interval of the mean difference (Student's t
below ``T_BELOW`` pairs, a bootstrap resampling images jointly from there on) and a sign-flip permutation test of it.

Scores of two models on the same image are correlated (an image that is hard for one is hard for the other), so
the per-image differences ``d_i = a_i - b_i`` vary far less than either score; resampling the two models
independently (``metrics.stats.intervals.bootstrap_difference``) ignores that and gives intervals that are far
too wide. Every procedure here works on ``d``.

Why t below 30 pairs: the percentile bootstrap's spread is short by a factor sqrt((N - 1) / N) and its quantiles
are normal, not t, so it under-covers with few images. Coverage of a 95% interval in simulation (4,000 data sets
each, Monte Carlo SE 0.0034; ``tests/metrics/stats/test_paired.py`` asserts them), N = 16 / 25 / 100:

- normal differences: bootstrap 0.915 / 0.933 / 0.943, t 0.949 / 0.956 / 0.949;
- heavy tails (t with 3 df): bootstrap 0.912 / 0.922 / 0.943, t 0.958 / 0.956 / 0.956;
- skewness 1 (gamma, shape 4; the per-image randomisation differences on the board have sample skewness 0.3-2):
  bootstrap 0.915 / 0.930 / 0.944, t 0.942 / 0.945 / 0.948;
- skewness 2 (exponential): bootstrap 0.888 / 0.916 / 0.935, t 0.912 / 0.929 / 0.940. BCa (0.90 / 0.93) and the
  bootstrap-t (0.95 / 0.94, but 0.92 under the heavy tails above) do not do better across these shapes: no
  interval of a mean is exact for strongly skewed differences at N = 16; the sign-flip p-value is exact for
  symmetric ones.

At N >= 30 the bootstrap is kept (the board's 100-image rows are unchanged); it is 0.5-0.7 points short there too,
where t covers 0.948-0.956 (``T_BELOW`` moves the switch).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from metrics.stats._checks import (
    Alternative,
    as_array,
    check_alternative,
    check_level,
    check_positive_int,
    check_same_length,
    tail_count,
)
from metrics.stats.intervals import bootstrap_interval

MAX_EXACT_PAIRS = 12  # exact sign-flip enumeration up to 2^12 = 4096 sign vectors
T_BELOW = 30  # paired_comparison's interval is Student's t below this many pairs, the paired bootstrap from there on
_CHUNK = 1 << 22  # sign entries per Monte Carlo chunk (bounds memory)
_CACHED = 1 << 20  # Monte Carlo sign entries kept per (n, n_resamples, seed), 16 such sets at most


def _pair(a: object, b: object, *, allow_nan: bool = False) -> tuple[np.ndarray, np.ndarray]:
    x = as_array(a, "a", ndim=1, allow_nan=allow_nan)
    y = as_array(b, "b", ndim=1, allow_nan=allow_nan)
    check_same_length(x, y, "a", "b")
    return x, y


def drop_nan_pairs(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """Keep the pairs where both ``a[i]`` and ``b[i]`` are numbers.

    Args:
        a, b: float ``(N,)``, same length; NaN allowed, infinities not.

    Returns:
        ``(a_kept, b_kept, n_dropped)``: float64 ``(N - n_dropped,)`` each, in the input order.

    Raises:
        ValueError: bad shapes, different lengths or infinite values.

    Example:
        >>> a, b, dropped = drop_nan_pairs([1.0, float("nan"), 3.0], [0.5, 1.0, float("nan")])
        >>> a.tolist(), b.tolist(), dropped
        ([1.0], [0.5], 2)
    """
    x, y = _pair(a, b, allow_nan=True)
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep], int(keep.size - keep.sum())


def paired_bootstrap_difference(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``mean(a - b)`` and its percentile bootstrap interval, resampling images jointly (a[i], b[i] together).

    ``diff = (1/N) sum_i d_i`` with ``d_i = a_i - b_i``; each replicate draws N image indices with replacement
    (``numpy.random.default_rng(seed)``) and averages ``d`` over them; ``(lo, hi)`` are the replicates'
    ``(1 - level)/2`` and ``(1 + level)/2`` quantiles (``metrics.stats.intervals.bootstrap_interval`` of d).
    Scores that differ by a constant give the degenerate interval ``(c, c, c)``.

    Args:
        a, b: float ``(N,)``, finite, the two models' per-image scores on the same N images (same order).
        n_resamples: bootstrap replicates.
        level: coverage of the interval.
        seed: seed of the resampling.

    Returns:
        ``(diff, lo, hi)``; NaN interval for N < 2 (NaN diff for N = 0).

    Raises:
        ValueError: bad shapes, different lengths, NaN or infinite values (``paired_comparison`` drops NaN pairs).

    Example:
        >>> paired_bootstrap_difference([1.0, 2.0, 3.5, 0.5], [0.75, 1.75, 3.25, 0.25])
        (0.25, 0.25, 0.25)
    """
    x, y = _pair(a, b)
    check_positive_int(n_resamples, "n_resamples")
    level = check_level(level)
    d = x - y
    diff = float(d.mean()) if d.size else math.nan
    lo, hi = bootstrap_interval(d, n_resamples=n_resamples, level=level, seed=seed)
    return diff, lo, hi


def paired_t_interval(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, level: float = 0.95
) -> tuple[float, float, float]:
    """``mean(a - b)`` and its Student t interval: ``diff -+ t_{N-1, (1+level)/2} s / sqrt(N)`` with ``s`` the
    sample standard deviation (ddof 1) of ``d = a - b`` (``scipy.stats.ttest_rel(a, b).confidence_interval``).
    Differences that are all equal give the degenerate interval ``(c, c, c)``.

    Args:
        a, b: float ``(N,)``, finite, the two models' per-image scores on the same N images (same order).
        level: coverage of the interval.

    Returns:
        ``(diff, lo, hi)``; NaN interval for N < 2 (NaN diff for N = 0).

    Raises:
        ValueError: bad shapes, different lengths, NaN or infinite values, or a bad level.

    Example:
        >>> [round(v, 4) for v in paired_t_interval([1.0, 2.0, 3.5, 0.5], [0.5, 1.5, 3.5, 0.0])]
        [0.375, -0.0228, 0.7728]
    """
    x, y = _pair(a, b)
    level = check_level(level)
    d = x - y
    n = d.size
    if n < 2:
        return (float(d.mean()) if n else math.nan), math.nan, math.nan
    diff = float(d.mean())
    if np.ptp(d) == 0:
        return diff, diff, diff
    from scipy import stats  # on first use: a run's parent imports this package but never calls this

    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * float(d.std(ddof=1)) / math.sqrt(n)
    return diff, diff - half, diff + half


def paired_permutation_test(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    alternative: Alternative = "two-sided",
    n_resamples: int = 9999,
    max_exact: int = MAX_EXACT_PAIRS,
    seed: int = 0,
) -> float:
    """Sign-flip permutation test of the mean paired difference ``mean(a - b)``.

    Null hypothesis: within each pair the two scores are exchangeable, so every ``d_i = a_i - b_i`` is as likely
    to have either sign. Statistic ``T = sum_i d_i``; the null distribution is ``T(e) = sum_i e_i d_i`` over sign
    vectors ``e`` in {-1, +1}^N. For N <= ``max_exact`` all 2^N sign vectors are enumerated and
    ``p = #{e : T(e) at least as extreme as T_obs} / 2^N``; beyond, ``n_resamples`` random sign vectors from
    ``numpy.random.default_rng(seed)`` give ``p = (#{extreme} + 1) / (n_resamples + 1)``. "greater" (a > b):
    ``T(e) >= T_obs``; "less": ``T(e) <= T_obs``; "two-sided": ``|T(e)| >= |T_obs|``. Ties within a relative
    1e-12 count as extreme. Valid (P(p <= alpha) <= alpha) whatever the distribution of ``d``, if it is symmetric
    under the null.

    Args:
        a, b: float ``(N,)``, finite, same length (paired per-image scores).
        alternative: direction of the alternative hypothesis.
        n_resamples: Monte Carlo sign vectors when N > ``max_exact``.
        max_exact: enumerate all 2^N sign vectors up to this N (at most 20).
        seed: seed of the Monte Carlo sign vectors.

    Returns:
        the p-value, in (0, 1]; NaN for N = 0; 1.0 when every difference is 0.

    Raises:
        ValueError: bad shapes, lengths, NaN or infinite values, or bad options.

    Example:
        >>> paired_permutation_test([3.0, 4.0, 5.0, 6.0], [1.0, 2.0, 3.0, 4.0], alternative="greater")
        0.0625
    """
    x, y = _pair(a, b)
    check_alternative(alternative)
    check_positive_int(n_resamples, "n_resamples")
    if isinstance(max_exact, bool) or not isinstance(max_exact, int) or not 0 <= max_exact <= 20:
        raise ValueError(f"max_exact must be an integer in [0, 20], got {max_exact!r}")
    d = x - y
    n = d.size
    if n == 0:
        return math.nan
    if not np.any(d):
        return 1.0
    tol = 1e-12 * float(np.abs(d).sum())
    observed = float(np.ones(n) @ d)
    if n <= max_exact:
        signs = _all_signs(n)
        exact: float = tail_count(signs @ d, observed, alternative, tol) / signs.shape[0]
        return exact
    chunks = _cached_signs(n, n_resamples, seed) if n * n_resamples <= _CACHED else _sign_chunks(n, n_resamples, seed)
    count = sum(tail_count(signs @ d, observed, alternative, tol) for signs in chunks)
    return (count + 1) / (n_resamples + 1)


@functools.lru_cache(maxsize=24)
def _all_signs(n: int) -> np.ndarray:
    """All 2^n sign vectors ``(2^n, n)`` (read-only: shared by the calls with this n)."""
    signs: np.ndarray = 1.0 - 2.0 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
    signs.flags.writeable = False
    return signs


def _sign_chunks(n: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """``n_resamples`` random sign vectors of length n from ``numpy.random.default_rng(seed)``, in chunks of at most
    ``_CHUNK`` entries."""
    rng = np.random.default_rng(seed)
    done, chunk = 0, max(1, _CHUNK // n)
    while done < n_resamples:
        m = min(chunk, n_resamples - done)
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(m, n))
        signs.flags.writeable = False
        yield signs
        done += m


@functools.lru_cache(maxsize=16)
def _cached_signs(n: int, n_resamples: int, seed: int) -> tuple[np.ndarray, ...]:
    """:func:`_sign_chunks`, kept for the next test of the same n and seed (a leaderboard runs hundreds of tests on
    a few image sets: drawing the signs was most of a test's time); at most ``_CACHED`` entries each (8 MiB)."""
    return tuple(_sign_chunks(n, n_resamples, seed))


@dataclass(frozen=True)
class PairedComparison:
    """Result of ``paired_comparison``: ``diff = mean(a - b)`` over the ``n_pairs`` complete pairs, its interval
    ``(lo, hi)`` and which one it is (``interval``: "t" below ``T_BELOW`` pairs, else "bootstrap"), the sign-flip
    p-value, and how many pairs were dropped for a NaN on either side."""

    diff: float
    lo: float
    hi: float
    p_value: float
    n_pairs: int
    n_dropped: int
    interval: str = "bootstrap"


def paired_comparison(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    alternative: Alternative = "two-sided",
    level: float = 0.95,
    n_resamples: int = 1000,
    n_permutations: int = 9999,
    seed: int = 0,
) -> PairedComparison:
    """Paired comparison of two models on the same images, NaN-tolerant: drops the pairs where either score is
    NaN (``drop_nan_pairs``), then on the rest an interval (``paired_t_interval`` below ``T_BELOW`` = 30 pairs, where
    the bootstrap under-covers: see the module docstring; ``paired_bootstrap_difference`` from 30 on) and
    ``paired_permutation_test``.

    Args:
        a, b: float ``(N,)``, same length, per-image scores of the two models (NaN where a score is undefined).
        alternative: direction of the test ("greater": a > b).
        level: coverage of the interval.
        n_resamples: bootstrap replicates of the interval (30 pairs or more).
        n_permutations: Monte Carlo sign vectors of the test (exact enumeration for up to 12 pairs).
        seed: seed of both.

    Returns:
        a ``PairedComparison``.

    Raises:
        ValueError: bad shapes, lengths, infinite values or options.

    Example:
        >>> r = paired_comparison([1.0, 2.0, float("nan"), 4.0], [0.5, 1.5, 2.0, 3.5], alternative="greater")
        >>> r.diff, r.lo, r.hi, r.p_value, r.n_pairs, r.n_dropped, r.interval
        (0.5, 0.5, 0.5, 0.125, 3, 1, 't')
    """
    x, y, dropped = drop_nan_pairs(a, b)
    check_positive_int(n_resamples, "n_resamples")
    if x.size < T_BELOW:
        diff, lo, hi = paired_t_interval(x, y, level=level)
        kind = "t"
    else:
        diff, lo, hi = paired_bootstrap_difference(x, y, n_resamples=n_resamples, level=level, seed=seed)
        kind = "bootstrap"
    p = paired_permutation_test(x, y, alternative=alternative, n_resamples=n_permutations, seed=seed)
    return PairedComparison(diff, lo, hi, p, int(x.size), dropped, kind)


__all__ = [
    "MAX_EXACT_PAIRS",
    "PairedComparison",
    "T_BELOW",
    "drop_nan_pairs",
    "paired_bootstrap_difference",
    "paired_comparison",
    "paired_permutation_test",
    "paired_t_interval",
]
