"""Exact and Monte Carlo permutation tests of Spearman's rho: known exact answers, exact validity under the null
by full enumeration, and agreement with ``scipy.stats.permutation_test``."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from metrics.stats.permutation import spearman_permutation_test


def _scipy_exact(x, y, alternative):
    """scipy's exact permutation p-value of Spearman's rho, permuting y only (n! orderings)."""
    rx = stats.rankdata(x)

    def rho(v, axis=-1):  # vectorized: Pearson of average ranks along the last axis
        ry = stats.rankdata(v, axis=-1)
        a, b = rx - rx.mean(), ry - ry.mean(axis=-1, keepdims=True)
        return (b @ a) / np.sqrt((a @ a) * (b * b).sum(axis=-1))

    return stats.permutation_test(
        (y,), rho, permutation_type="pairings", n_resamples=np.inf, alternative=alternative
    ).pvalue


def test_perfect_order_with_five_models():
    x = [0.1, 0.3, 0.5, 0.7, 0.9]
    y = [1.0, 2.0, 4.0, 8.0, 16.0]
    assert spearman_permutation_test(x, y, alternative="greater") == (1.0, 1 / 120)
    assert spearman_permutation_test(x, y, alternative="less") == (1.0, 1.0)
    assert spearman_permutation_test(x, y, alternative="two-sided") == (1.0, 2 / 120)
    assert spearman_permutation_test(x, y[::-1], alternative="less") == (-1.0, 1 / 120)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_exact_validity_under_the_null_with_five_models(alternative):
    # every ordering of y is equally likely under the null: enumerate all 120 and check P(p <= alpha) <= alpha
    # for every alpha (the test is exact, so this holds with no tolerance)
    x = np.arange(5.0)
    ps = np.array(
        [
            spearman_permutation_test(x, np.array(perm), alternative=alternative)[1]
            for perm in itertools.permutations(range(5))
        ]
    )
    for alpha in [0.01, 0.05, 0.1, *np.unique(ps)]:
        assert np.mean(ps <= alpha + 1e-12) <= alpha + 1e-12
    rate = np.mean(ps <= 0.05)
    assert rate <= 0.05
    if alternative == "two-sided":
        # only rho = +-1 reject at 5% two-sided with 5 models
        assert rate == 2 / 120
    else:
        # rho = 1 (p = 1/120) and the 4 adjacent swaps, rho = 0.9 (p = 5/120)
        assert rate == 5 / 120


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_exact_p_equals_scipy(alternative):
    rng = np.random.default_rng(0)
    for _ in range(3):
        x, y = rng.normal(size=6), rng.normal(size=6)
        rho, p = spearman_permutation_test(x, y, alternative=alternative)
        assert rho == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-15)
        assert p == pytest.approx(_scipy_exact(x, y, alternative), abs=1e-12)


def test_ties_one_sided_equal_scipy_two_sided_equals_enumeration():
    x = np.array([0.0, 0.0, 1.0, 1.0, 2.0, 3.0])
    y = np.array([0.2, 0.1, 0.3, 0.3, 0.5, 0.4])
    rho, p_greater = spearman_permutation_test(x, y, alternative="greater")
    assert rho == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-15)
    assert p_greater == pytest.approx(_scipy_exact(x, y, "greater"), abs=1e-12)
    assert spearman_permutation_test(x, y, alternative="less")[1] == pytest.approx(_scipy_exact(x, y, "less"))
    # with ties the null is not symmetric: two-sided is P(|rho*| >= |rho|), counted here by brute force
    null = [stats.spearmanr(x, y[list(perm)]).statistic for perm in itertools.permutations(range(6))]
    expected = np.mean(np.abs(null) >= abs(rho) - 1e-12)
    assert spearman_permutation_test(x, y)[1] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("alternative", ["greater", "two-sided"])
def test_monte_carlo_close_to_exact(alternative):
    # forced Monte Carlo on 7 models against scipy's exact p: p_mc = (k + 1) / (R + 1), k ~ Binomial(R, p), so
    # |p_mc - p| <= 4 sqrt(p (1 - p) / R) + 1 / (R + 1) except with probability < 1e-4
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=7), rng.normal(size=7)
    y = y + 0.8 * x
    exact = _scipy_exact(x, y, alternative)
    r = 4000
    _, p = spearman_permutation_test(x, y, alternative=alternative, max_exact=0, n_resamples=r, seed=3)
    assert abs(p - exact) <= 4 * math.sqrt(exact * (1 - exact) / r) + 1 / (r + 1)


def test_monte_carlo_plus_one_correction():
    # 12 models in perfect order: no random ordering reaches rho = 1 (chance 999 / 12! ~ 2e-6), so p = 1 / (R + 1)
    x = np.arange(12.0)
    rho, p = spearman_permutation_test(x, np.exp(x), alternative="greater", n_resamples=999, seed=0)
    assert (rho, p) == (1.0, 1 / 1000)
    assert spearman_permutation_test(x, np.exp(x), n_resamples=999, seed=0) == (1.0, 1 / 1000)


def test_constant_input_is_undefined():
    rho, p = spearman_permutation_test([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])
    assert math.isnan(rho) and math.isnan(p)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x": [1.0, 2.0], "y": [1.0]}, "same length"),
        ({"x": [1.0], "y": [1.0]}, "at least 2"),
        ({"x": [1.0, np.nan], "y": [1.0, 2.0]}, "x contains"),
        ({"x": [1.0, 2.0], "y": [1.0, 2.0], "alternative": "bigger"}, "alternative"),
        ({"x": [1.0, 2.0], "y": [1.0, 2.0], "n_resamples": 0}, "n_resamples"),
        ({"x": [1.0, 2.0], "y": [1.0, 2.0], "max_exact": 11}, "max_exact"),
    ],
)
def test_bad_input_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        spearman_permutation_test(**kwargs)
