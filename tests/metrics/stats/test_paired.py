"""Paired bootstrap, t interval and sign-flip test: degenerate and decisive known cases, agreement with scipy
(bootstrap with ``paired=True``, ``ttest_rel``, exact sign-flip ``permutation_test``), calibration of the p-value
under a null, and coverage of ``paired_comparison``'s interval at N = 16, 25 and 100 by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from metrics.stats import paired
from metrics.stats.intervals import bootstrap_difference
from metrics.stats.paired import (
    T_BELOW,
    PairedComparison,
    drop_nan_pairs,
    paired_bootstrap_difference,
    paired_comparison,
    paired_permutation_test,
    paired_t_interval,
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


def test_kept_sign_vectors_give_the_p_values_of_fresh_draws(monkeypatch):
    """A leaderboard tests many scores on the same images: the Monte Carlo sign vectors are kept per (n, resamples,
    seed) and must be exactly the ones a fresh draw gives, and nobody's to modify."""
    rng = np.random.default_rng(8)
    cases = [
        (rng.normal(size=n), rng.normal(size=n) + shift, seed)
        for n in (25, 60)
        for shift in (0, 0.3)
        for seed in (0, 1)
    ]
    kept = [paired_permutation_test(a, b, seed=seed) for a, b, seed in cases]
    again = [paired_permutation_test(a, b, seed=seed) for a, b, seed in cases]
    monkeypatch.setattr(paired, "_CACHED", 0)  # every call draws afresh
    fresh = [paired_permutation_test(a, b, seed=seed) for a, b, seed in cases]
    assert kept == again == fresh
    assert len(set(kept)) > 1
    signs = paired._cached_signs(25, 9999, 0)[0]
    assert signs.shape == (9999, 25) and not signs.flags.writeable


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
    # 3 pairs: the t interval, d = (0.5, 1.0, 0.5): s = sqrt(1/12), half-width t_{2, 0.975} s / sqrt(3) = 4.303 / 6
    half = stats.t.ppf(0.975, 2) / 6
    assert (r.lo, r.hi, r.interval) == (pytest.approx(2 / 3 - half, abs=1e-14), pytest.approx(2 / 3 + half), "t")
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


# ---- the interval: Student's t below T_BELOW pairs -----------------------------------------------------------------


def test_t_interval_equals_scipy_ttest_rel():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=12), rng.normal(size=12)
    for level in (0.9, 0.95):
        diff, lo, hi = paired_t_interval(a, b, level=level)
        ci = stats.ttest_rel(a, b).confidence_interval(level)
        assert diff == pytest.approx((a - b).mean(), abs=1e-15)
        assert (lo, hi) == (pytest.approx(ci.low, abs=1e-13), pytest.approx(ci.high, abs=1e-13))
    assert paired_t_interval([2.0, 3.0, 5.0], [1.0, 2.0, 4.0]) == (1.0, 1.0, 1.0)  # constant difference
    diff, lo, hi = paired_t_interval([2.0], [1.0])
    assert diff == 1.0 and math.isnan(lo) and math.isnan(hi)


def test_comparison_switches_to_the_bootstrap_at_thirty_pairs():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=30), rng.normal(size=30)
    r = paired_comparison(a[:29], b[:29], n_permutations=99)
    assert (r.interval, r.n_pairs) == ("t", 29) and T_BELOW == 30
    assert (r.diff, r.lo, r.hi) == paired_t_interval(a[:29], b[:29])
    r = paired_comparison(a, b, n_permutations=99, seed=3)
    assert r.interval == "bootstrap"
    assert (r.diff, r.lo, r.hi) == paired_bootstrap_difference(a, b, seed=3)


DIFFERENCES = {  # per-image differences with true mean 0 after centring
    "normal": lambda rng, n: rng.normal(size=n),
    "heavy tails (t, 3 df)": lambda rng, n: rng.standard_t(3, size=n),
    "skewness 1 (gamma, shape 4)": lambda rng, n: rng.gamma(4.0, size=n) - 4.0,
}


def _coverage(name: str, n: int, sims: int) -> tuple[float, float]:
    """Coverage of the true mean 0 by paired_comparison's interval (t below 30 pairs, bootstrap from 30 on) and,
    on the same data sets, by the paired bootstrap."""
    rng = np.random.default_rng(n)
    draw = DIFFERENCES[name]
    ours = boot = 0
    for i in range(sims):
        d = draw(rng, n)
        zero = np.zeros(n)
        _, lo, hi = paired_bootstrap_difference(d, zero, seed=i)
        boot += lo <= 0 <= hi
        if n < T_BELOW:
            _, lo, hi = paired_t_interval(d, zero)
        ours += lo <= 0 <= hi
    return ours / sims, boot / sims


@pytest.mark.parametrize("name", list(DIFFERENCES))
@pytest.mark.parametrize("n", [16, 25, 100])
def test_interval_covers_at_small_and_large_n(name, n):
    # Coverage >= 0.95 - slack - 3 Monte Carlo SE. Three SE, not two: the t interval is exact for normal
    # differences, so a two-SE bound would fail for 2.3% of seeds in each of these 9 rows. The slack is 0 for the
    # t interval on symmetric differences and one point where the module docstring measures a shortfall: skewness 1
    # (t 0.942-0.948) and the bootstrap at 100 pairs (0.943-0.944). Below 30 pairs t must also beat the bootstrap
    # it replaces, on the same data sets (0.91-0.93 there)
    sims = 2000 if n < T_BELOW else 1000
    ours, boot = _coverage(name, n, sims)
    slack = 0.01 if name.startswith("skewness") or n >= T_BELOW else 0.0
    assert ours >= 0.95 - slack - 3 * math.sqrt(0.95 * 0.05 / sims)
    if n < T_BELOW:
        assert ours > boot
