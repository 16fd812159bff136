"""Paired bootstrap and sign-flip test: degenerate and decisive known cases, agreement with scipy (bootstrap with
``paired=True``, exact sign-flip ``permutation_test``), and calibration of the p-value under a null."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from metrics.stats.intervals import bootstrap_difference
from metrics.stats.paired import (
    PairedComparison,
    drop_nan_pairs,
    paired_bootstrap_difference,
    paired_comparison,
    paired_permutation_test,
)


def test_perfectly_correlated_scores_collapse_to_the_difference():
    # dyadic values: a - b is exactly 0.25 for every image, so every replicate mean is exactly 0.25
    a = np.random.default_rng(0).integers(-64, 64, size=300) / 8
    assert paired_bootstrap_difference(a, a - 0.25) == (0.25, 0.25, 0.25)
    # b = a - 0.3 in float64: each a_i - b_i is 0.3 up to rounding, |error| <= ulp(|a_i| + 0.3) = 2^-49 for
    # |a| < 8, so diff, lo and hi are 0.3 within 1e-14
    a = np.random.default_rng(1).uniform(-8, 8, size=300)
    diff, lo, hi = paired_bootstrap_difference(a, a - 0.3, n_resamples=500)
    assert max(abs(diff - 0.3), abs(lo - 0.3), abs(hi - 0.3)) < 1e-14
    # the unpaired interval of the same data is wide
    _, ulo, uhi = bootstrap_difference(a, a - 0.3)
    assert uhi - ulo > 1.0


def test_unpaired_inconclusive_paired_decisive():
    # images differ a lot (s, sd 1), the models differ by 0.1 with little per-model noise (sd 0.05)
    rng = np.random.default_rng(3)
    s = rng.normal(size=200)
    a = s + 0.1 + 0.05 * rng.normal(size=200)
    b = s + 0.05 * rng.normal(size=200)
    _, ulo, uhi = bootstrap_difference(a, b)
    assert ulo < 0 < uhi  # unpaired: sd of the difference ~ sqrt(2 / 200) = 0.1, the interval spans 0
    diff, lo, hi = paired_bootstrap_difference(a, b)
    # paired: sd ~ 0.05 sqrt(2 / 200) = 0.005, so the interval is ~0.1 +- 0.01
    assert 0.08 < lo < diff < hi < 0.12
    assert paired_permutation_test(a, b) == 1 / 10000  # no sign vector of 9999 comes close
    assert stats.ttest_rel(a, b).pvalue < 1e-40  # the textbook paired test agrees it is decisive


def test_bootstrap_matches_scipy_paired_bootstrap():
    # same procedure, different random draws: the quantiles agree within Monte Carlo error. The q-quantile of R
    # bootstrap means has sd ~ sqrt(q (1 - q) / R) / f(x_q) with f the (near-normal, sd s) density of the
    # replicate means: f(x_q) = phi(z_q) / s; two independent runs differ by sqrt(2) times that; allow 5 sd
    rng = np.random.default_rng(4)
    a = rng.gamma(2.0, size=150)
    b = a * 0.8 + rng.normal(0, 0.3, size=150)
    r = 20000
    _, lo, hi = paired_bootstrap_difference(a, b, n_resamples=r, seed=1)
    ref = stats.bootstrap(
        (a, b),
        lambda x, y, axis=-1: (x - y).mean(axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=r,
        method="percentile",
        random_state=np.random.default_rng(2),
    )
    s = (a - b).std(ddof=1) / math.sqrt(a.size)
    tol = 5 * math.sqrt(2) * math.sqrt(0.025 * 0.975 / r) * s / stats.norm.pdf(1.959964)
    assert abs(lo - ref.confidence_interval.low) < tol
    assert abs(hi - ref.confidence_interval.high) < tol


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_exact_sign_flip_equals_scipy(alternative):
    # scipy's permutation_test on one sample flips signs; with n_resamples=inf it enumerates all 2^10 vectors
    rng = np.random.default_rng(5)
    for shift in (0.0, 0.4):
        a = rng.normal(size=10)
        b = a - shift + rng.normal(0, 0.5, size=10)
        ref = stats.permutation_test(
            (a - b,),
            lambda d, axis=-1: d.mean(axis=axis),
            permutation_type="samples",
            n_resamples=np.inf,
            alternative=alternative,
        ).pvalue
        assert paired_permutation_test(a, b, alternative=alternative) == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("alternative", ["two-sided", "greater"])
def test_monte_carlo_p_value_is_calibrated_under_the_null(alternative):
    # null: a_i and b_i exchangeable (shared image effect, iid model noise, heavy-tailed). With R = 199 Monte
    # Carlo sign vectors, p = (k + 1) / 200 <= 0.05 iff k <= 9, which has probability exactly 10 / 200 = 0.05
    # for a continuous null. Over 2000 simulated data sets the number of rejections is Binomial(2000, 0.05): it
    # must lie in its central 99.9% range (binom.ppf(0.0005), binom.isf(0.0005)) = [69, 133]
    rng = np.random.default_rng(6)
    sims, alpha = 2000, 0.05
    rejected = 0
    for i in range(sims):
        s = rng.normal(size=30)
        a, b = s + rng.standard_t(3, size=30), s + rng.standard_t(3, size=30)
        p = paired_permutation_test(a, b, alternative=alternative, n_resamples=199, seed=i)
        rejected += p <= alpha
    lo, hi = stats.binom.ppf(0.0005, sims, alpha), stats.binom.isf(0.0005, sims, alpha)
    assert lo <= rejected <= hi


def test_sign_flip_edge_cases():
    assert paired_permutation_test([1.0, 2.0], [1.0, 2.0]) == 1.0  # all differences 0
    assert math.isnan(paired_permutation_test([], []))
    # one pair: the two sign vectors give +-d, two-sided p = 1, one-sided 1/2
    assert paired_permutation_test([2.0], [1.0]) == 1.0
    assert paired_permutation_test([2.0], [1.0], alternative="greater") == 0.5
    diff, lo, hi = paired_bootstrap_difference([2.0], [1.0])
    assert diff == 1.0 and math.isnan(lo) and math.isnan(hi)


def test_nan_pairs_dropped_and_counted():
    a = np.array([1.0, np.nan, 3.0, 4.0, 5.0, np.nan])
    b = np.array([0.5, 1.0, np.nan, 3.0, 4.5, np.nan])
    x, y, dropped = drop_nan_pairs(a, b)
    assert x.tolist() == [1.0, 4.0, 5.0] and y.tolist() == [0.5, 3.0, 4.5] and dropped == 3
    r = paired_comparison(a, b, alternative="greater")
    assert isinstance(r, PairedComparison)
    assert (r.n_pairs, r.n_dropped) == (3, 3)
    assert r.diff == pytest.approx((0.5 + 1.0 + 0.5) / 3, abs=1e-15)
    assert 0.5 <= r.lo <= r.diff <= r.hi <= 1.0
    assert r.p_value == 1 / 8  # 3 positive differences: only the all-plus sign vector is as large


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: paired_bootstrap_difference([1.0, np.nan], [1.0, 2.0]), "a contains NaN"),
        (lambda: paired_bootstrap_difference([1.0, 2.0], [1.0]), "same length"),
        (lambda: paired_bootstrap_difference([1.0, 2.0], [1.0, 2.0], level=1.0), "level"),
        (lambda: paired_permutation_test([1.0], [np.inf]), "b contains"),
        (lambda: paired_permutation_test([1.0], [1.0], alternative="up"), "alternative"),
        (lambda: drop_nan_pairs([1.0, np.inf], [1.0, 2.0]), "a contains infinite"),
        (lambda: paired_comparison([[1.0]], [[1.0]]), "1-dimensional"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
