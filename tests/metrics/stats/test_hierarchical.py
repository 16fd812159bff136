"""Recipe-level statistics on synthetic seeds x images data with known variance components: recovery of the
components, coverage of the recipe difference's intervals, the mixed-model interval against scipy's Welch test,
and the dose-response permutation test.

Synthetic model: ``y[r, s, i] = mu_r + u[r, s] + w[i] + e[r, s, i]`` with seed effects ``u ~ N(0, 0.2^2)``,
image noise ``e ~ N(0, 1)`` and an image difficulty ``w ~ N(0, 0.5^2)`` shared by every model (it cancels in
differences, and must not leak into the seed component).

Coverage targets (95% nominal): the number of intervals containing the true difference over ``sims`` data sets
must lie in ``[binom.ppf(0.0005, sims, 0.95 - SLACK), binom.isf(0.0005, sims, 0.95 + SLACK)]``, the central 99.9%
range of the count if the true coverage is within ``SLACK`` of nominal.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from metrics.stats.hierarchical import (
    dose_response_test,
    recipe_difference,
    two_level_bootstrap,
    variance_components,
)
from tests.metrics.stats.simulate import mc_bound, zoo

SIGMA_SEED, SIGMA_RES, SIGMA_IMAGE = 0.2, 1.0, 0.5
SLACK = 0.02


def _recipes(rng, means, n_seeds, n_images):
    w = SIGMA_IMAGE * rng.normal(size=n_images)
    return [
        mu + SIGMA_SEED * rng.normal(size=(n_seeds, 1)) + w + SIGMA_RES * rng.normal(size=(n_seeds, n_images))
        for mu in means
    ]


def _coverage_range(sims: int, slack: float = SLACK) -> tuple[float, float]:
    return stats.binom.ppf(0.0005, sims, 0.95 - slack), stats.binom.isf(0.0005, sims, 0.95 + slack)


def test_variance_components_recovered():
    # S = 10 seeds, N = 100 images, 200 data sets. Normal theory for the crossed design: independently,
    # MS_seed ~ (sr2 + N ss2) chi2_{S-1} / (S-1), MS_image ~ (sr2 + S si2) chi2_{N-1} / (N-1) and
    # MS_res ~ sr2 chi2_{(S-1)(N-1)} / ((S-1)(N-1)) (sr2, ss2, si2: residual, seed, image variances), so
    #   var(between_seed) = 2 / N^2 ((sr2 + N ss2)^2 / (S-1) + sr2^2 / ((S-1)(N-1))),
    #   var(image) = 2 / S^2 ((sr2 + S si2)^2 / (N-1) + sr2^2 / ((S-1)(N-1))),
    #   var(residual) = 2 sr2^2 / ((S-1)(N-1)),
    #   var(within_seed) = 2 ((sr2 + S si2)^2 (N-1) + sr2^2 (S-1)(N-1)) / (S (N-1))^2
    # (within_seed = (SS_image + SS_res) / (S (N-1))). The mean over 200 data sets must be within 4 standard errors
    # of the truth; truncation at 0 has probability P(F_{9, 891} < 1/5) ~ 1e-4 here, so it adds no bias to speak of.
    rng = np.random.default_rng(0)
    s, n, sims = 10, 100, 200
    ss2, sr2, si2 = SIGMA_SEED**2, SIGMA_RES**2, SIGMA_IMAGE**2
    df_seed, df_image, df_res = s - 1, n - 1, (s - 1) * (n - 1)
    sd = {
        "between_seed": math.sqrt(2 / n**2 * ((sr2 + n * ss2) ** 2 / df_seed + sr2**2 / df_res)),
        "image": math.sqrt(2 / s**2 * ((sr2 + s * si2) ** 2 / df_image + sr2**2 / df_res)),
        "residual": math.sqrt(2 * sr2**2 / df_res),
        "within_seed": math.sqrt(2 * ((sr2 + s * si2) ** 2 * df_image + sr2**2 * df_res) / (s * df_image) ** 2),
    }
    truth = {"between_seed": ss2, "image": si2, "residual": sr2, "within_seed": si2 + sr2}
    comps = [variance_components(_recipes(rng, [0.0], s, n)[0]) for _ in range(sims)]
    for name, value in truth.items():
        estimates = np.array([getattr(c, name) for c in comps])
        assert abs(estimates.mean() - value) < 4 * sd[name] / math.sqrt(sims), name
        # the spread matches the formula behind the tolerance (an sd from 200 draws: ~5% relative error)
        assert 0.75 < estimates.std(ddof=1) / sd[name] < 1.25, name


def test_mixed_model_interval_equals_welch_on_seed_means():
    # additive data (no seed x image noise, w shared): the image term is 0, so the interval is Welch's t interval
    # of the seed means and the p-value Welch's t test
    rng = np.random.default_rng(1)
    w = rng.normal(size=50)
    a = 0.3 + rng.normal(size=(4, 1)) + w
    b = rng.normal(size=(3, 1)) + w
    for alternative in ("two-sided", "greater", "less"):
        r = recipe_difference(a, b, alternative=alternative, level=0.9)
        ref = stats.ttest_ind(a.mean(1), b.mean(1), equal_var=False, alternative=alternative)
        assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
        assert r.df == pytest.approx(ref.df, rel=1e-9)
    ci = stats.ttest_ind(a.mean(1), b.mean(1), equal_var=False).confidence_interval(0.9)
    r = recipe_difference(a, b, level=0.9)
    assert (r.lo, r.hi) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))
    assert r.diff == pytest.approx(a.mean() - b.mean(), abs=1e-14)


def test_mixed_model_interval_covers_with_three_seeds():
    # the zoo's case: 3 seeds per recipe, 100 images. Target: the true difference 0.3
    rng = np.random.default_rng(2)
    sims, covered, rejected_null = 400, 0, 0
    for _ in range(sims):
        a, b = _recipes(rng, [0.3, 0.0], 3, 100)
        r = recipe_difference(a, b)
        covered += r.lo <= 0.3 <= r.hi
        a0, b0 = _recipes(rng, [0.0, 0.0], 3, 100)
        rejected_null += recipe_difference(a0, b0).p_value <= 0.05
    lo, hi = _coverage_range(sims)
    assert lo <= covered <= hi
    # the p-value's size under the null: rejections ~ Binomial(400, 0.05 -+ SLACK)
    assert stats.binom.ppf(0.0005, sims, 0.05 - SLACK) <= rejected_null <= stats.binom.isf(0.0005, sims, 0.05 + SLACK)


def test_three_vs_three_is_calibrated_under_null_a_with_the_boards_components():
    # null (a) of issue 24 in the shared simulated zoo (tests/metrics/stats/simulate.py: the board's ABPC variance
    # components, recipe-specific image effects, 100 images): two 3-seed recipes that do not differ. Type I of the
    # two-sided 5% test <= 0.05 + 2 Monte Carlo SE (0.047-0.051 over 3,000 data sets at seed SD 0.01-0.05)
    rng = np.random.default_rng(8)
    sims, rejected = 1000, 0
    for _ in range(sims):
        z = zoo(rng, [3, 3])
        rejected += recipe_difference(z.of(0), z.of(1)).p_value <= 0.05
    assert rejected / sims <= mc_bound(0.05, sims)


def test_mixed_model_interval_covers_recipe_by_image_effects():
    # recipe-specific image effects (v_ri ~ N(0, 0.3^2), not shared across recipes) are only seen by resampling
    # images; the interval must still cover
    rng = np.random.default_rng(3)
    sims, covered = 300, 0
    for _ in range(sims):
        a, b = _recipes(rng, [0.3, 0.0], 4, 100)
        a, b = a + 0.3 * rng.normal(size=100), b + 0.3 * rng.normal(size=100)
        r = recipe_difference(a, b)
        covered += r.lo <= 0.3 <= r.hi
    lo, hi = _coverage_range(sims)
    assert lo <= covered <= hi


def test_two_level_bootstrap_coverage_with_ten_seeds():
    # with 10 seeds per recipe the two-level bootstrap is near nominal (SLACK 0.03: its seed variance is short by
    # (S - 1)/S, its image noise counted twice). With 3 seeds it undercovers (0.88-0.92 in simulation, not
    # asserted: telling that apart from 0.95 reliably needs thousands of data sets); recipe_difference is for that
    rng = np.random.default_rng(4)
    sims, covered = 200, 0
    for i in range(sims):
        a, b = _recipes(rng, [0.3, 0.0], 10, 100)
        diff, lo, hi = two_level_bootstrap(a, b, n_resamples=200, seed=i)
        assert diff == pytest.approx(a.mean() - b.mean(), abs=1e-14)
        covered += lo <= 0.3 <= hi
    lo, hi = _coverage_range(sims, slack=0.03)
    assert lo <= covered <= hi


def test_two_level_bootstrap_degenerate_and_joint_images():
    # identical seeds and a constant per-image difference: every replicate gives the same difference
    base = np.random.default_rng(5).normal(size=30)
    a = np.stack([base, base]) + 0.25
    b = np.stack([base, base, base])
    assert two_level_bootstrap(a, b) == pytest.approx((0.25, 0.25, 0.25), abs=1e-14)


def test_dose_response_exact_p_with_seed_replicates():
    # eps 0, 0.1, 0.2 with 2 seeds each, scores in perfect order: the orderings that reach the maximum rho are
    # those that only permute within eps groups (2 * 2 * 2 = 8 of 6! = 720): p = 8 / 720 = 1 / 90
    eps = [0.0, 0.0, 0.1, 0.1, 0.2, 0.2]
    rho, p = dose_response_test(eps, [0.1, 0.2, 0.3, 0.35, 0.5, 0.6])
    assert p == pytest.approx(1 / 90, abs=1e-15)
    assert rho == pytest.approx(stats.spearmanr(eps, [0.1, 0.2, 0.3, 0.35, 0.5, 0.6]).statistic, abs=1e-15)
    assert dose_response_test(eps, [0.6, 0.5, 0.35, 0.3, 0.2, 0.1], alternative="less")[1] == pytest.approx(1 / 90)


def test_dose_response_valid_under_the_null():
    # 6 models (3 eps x 2 seeds): under the null every ordering of the scores is equally likely; enumerating all
    # 720 gives the exact distribution of p, and P(p <= alpha) <= alpha must hold exactly
    import itertools

    eps = np.array([0.0, 0.0, 0.1, 0.1, 0.2, 0.2])
    ps = np.array(
        [dose_response_test(eps, np.array(perm, dtype=float))[1] for perm in itertools.permutations(range(6))]
    )
    for alpha in (0.01, 0.05, 0.1, 0.2):
        assert np.mean(ps <= alpha) <= alpha


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: recipe_difference(np.zeros((1, 5)), np.zeros((3, 5))), "scores_a must have shape"),
        (lambda: recipe_difference(np.zeros((2, 5)), np.zeros((3, 4))), "same N images"),
        (lambda: two_level_bootstrap(np.zeros((2, 5)), np.full((3, 5), np.nan)), "scores_b contains"),
        (lambda: two_level_bootstrap(np.zeros((2, 5)), np.zeros((3, 5)), n_resamples=0), "n_resamples"),
        (lambda: variance_components(np.zeros(5)), "2-dimensional"),
        (lambda: dose_response_test([0.0, 1.0], [1.0]), "same length"),
        (lambda: dose_response_test([0.0, np.nan], [1.0, 2.0]), "eps contains"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
