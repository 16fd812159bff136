"""Permutation test of a rank correlation across models: exact (every ordering) for few models, seeded Monte Carlo
beyond.

Under the null hypothesis (the metric is unrelated to robust accuracy: the models' metric values are exchangeable
given their accuracies) every assignment of the y values to the x values is equally likely, so the p-value is
the share of the n! orderings whose Spearman correlation is at least as extreme as the observed one. That is
exact: P(p <= alpha) <= alpha for every alpha, whatever n and however many ties. The t approximation behind
``scipy.stats.spearmanr``'s p-value is not, for few models: with 5 models it rejects at a nominal 5% (two-sided)
for 10 of the 120 orderings (8.3%); this test for 2 (rho = +-1).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from metrics.stats._checks import Alternative, as_array, check_alternative, check_positive_int, tail_count

MAX_EXACT = 8
_CHUNK = 1 << 20  # permuted values per Monte Carlo chunk (bounds memory)


def _centred_double_ranks(v: np.ndarray) -> np.ndarray:
    # 2 * average rank - (n + 1): integers (average ranks are multiples of 1/2), so every sum below is exact in
    # float64 and ties with the observed statistic are exact ties
    from scipy.stats import rankdata  # on first use: a run's parent imports this package but never calls this

    return 2 * rankdata(v) - (v.size + 1)


@lru_cache(maxsize=MAX_EXACT + 3)
def _orderings(n: int) -> np.ndarray:
    """Every ordering of ``range(n)``, ``(n!, n)`` intp, read-only (cached: the board runs many tests of few units)."""
    perms = np.array(list(itertools.permutations(range(n))), dtype=np.intp).reshape(-1, n)
    perms.setflags(write=False)
    return perms


def spearman_permutation_test(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    *,
    alternative: Alternative = "two-sided",
    n_resamples: int = 9999,
    max_exact: int = MAX_EXACT,
    seed: int = 0,
) -> tuple[float, float]:
    """Spearman's rho between ``x`` and ``y`` and its permutation p-value.

    ``rho = sum_i (r_i - rbar)(s_i - sbar) / sqrt(sum_i (r_i - rbar)^2 sum_i (s_i - sbar)^2)`` with r, s the
    average ranks of x and y (ties share the mean of their positions, as ``scipy.stats.spearmanr``).
    The null distribution permutes y against x. For n <= ``max_exact`` all n! orderings are enumerated and
    ``p = #{pi : T(pi) at least as extreme as T_obs} / n!`` (the identity ordering counts itself). Beyond,
    ``n_resamples`` random orderings from ``numpy.random.default_rng(seed)`` give
    ``p = (#{extreme} + 1) / (n_resamples + 1)``, which is also valid (never below its nominal level).
    "greater": rho* >= rho_obs; "less": rho* <= rho_obs; "two-sided": |rho*| >= |rho_obs|.

    Args:
        x, y: float ``(n,)``, finite, same length n >= 2 (e.g. robust accuracy and a metric, one per model).
        alternative: the direction of the alternative hypothesis.
        n_resamples: Monte Carlo orderings when n > ``max_exact``.
        max_exact: enumerate all orderings up to this many models (8! = 40320).
        seed: seed of the Monte Carlo orderings.

    Returns:
        ``(rho, p_value)``; ``(nan, nan)`` when x or y is constant (rho undefined).

    Raises:
        ValueError: bad shapes, lengths, non-finite values or options.

    Example:
        >>> spearman_permutation_test([1, 2, 3, 4, 5], [2.0, 2.5, 4.0, 7.0, 9.0], alternative="greater")
        (1.0, 0.008333333333333333)
    """
    a = as_array(x, "x", ndim=1)
    b = as_array(y, "y", ndim=1)
    if a.size != b.size:
        raise ValueError(f"x and y must have the same length, got {a.size} and {b.size}")
    if a.size < 2:
        raise ValueError(f"x and y need at least 2 values, got {a.size}")
    check_alternative(alternative)
    check_positive_int(n_resamples, "n_resamples")
    if isinstance(max_exact, bool) or not isinstance(max_exact, int) or not 0 <= max_exact <= 10:
        raise ValueError(f"max_exact must be an integer in [0, 10], got {max_exact!r}")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return (math.nan, math.nan)
    r, s = _centred_double_ranks(a), _centred_double_ranks(b)
    scale = math.sqrt(float(r @ r) * float(s @ s))
    observed = float(r @ s)
    rho = min(1.0, max(-1.0, observed / scale))
    n = a.size
    if n <= max_exact:
        perms = _orderings(n)
        count = tail_count(s[perms] @ r, observed, alternative, 0.5)
        return (rho, count / perms.shape[0])
    rng = np.random.default_rng(seed)
    count, done, chunk = 0, 0, max(1, _CHUNK // n)
    while done < n_resamples:
        m = min(chunk, n_resamples - done)
        perms = rng.permuted(np.broadcast_to(np.arange(n), (m, n)), axis=1)
        count += tail_count(s[perms] @ r, observed, alternative, 0.5)
        done += m
    return (rho, (count + 1) / (n_resamples + 1))


__all__ = ["MAX_EXACT", "spearman_permutation_test"]
