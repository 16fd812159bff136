"""Correlations with the recipe (or the eps level) as the unit: known answers, agreement with the permutation
engine on the unit means, and calibration by simulation (``simulate.zoo``) under the nulls of issue 24:

(b) recipe effects exist but are unrelated to robustness: ``recipe_correlation``'s type I is within its level, and
    the old unit (checkpoints as independent points) is not, so the test can fail;
(c) no trend over eps but each level has its own effect: ``dose_response`` on eps-level means is within its level,
    permuting checkpoints over levels is not.

Each rate is asserted against ``alpha + 2 sqrt(alpha (1 - alpha) / sims)`` (nominal plus twice its Monte Carlo
error); the old unit must exceed ``alpha + 4`` Monte Carlo errors.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from metrics.stats.hierarchical import dose_response_test
from metrics.stats.permutation import spearman_permutation_test
from metrics.stats.units import UnitCorrelation, dose_response, recipe_correlation, unit_means
from tests.metrics.stats.simulate import mc_bound, zoo

ALPHA = 0.05


def test_unit_means_in_order_of_first_appearance():
    labels, means = unit_means([1.0, 2.0, 3.0, 5.0, 7.0], ["b", "a", "b", "c", "a"])
    assert labels == ("b", "a", "c")
    assert means.tolist() == [2.0, 4.5, 5.0]


def test_recipe_correlation_is_the_permutation_test_of_recipe_means():
    # 4 recipes with 3, 1, 2, 3 seeds: the points are the recipe means, one per recipe
    rng = np.random.default_rng(0)
    recipes = ["a", "a", "a", "b", "c", "c", "d", "d", "d"]
    acc, score = rng.uniform(size=9), rng.normal(size=9)
    r = recipe_correlation(acc, score, recipes, alternative="greater")
    assert isinstance(r, UnitCorrelation)
    xm = [acc[:3].mean(), acc[3], acc[4:6].mean(), acc[6:].mean()]
    ym = [score[:3].mean(), score[3], score[4:6].mean(), score[6:].mean()]
    assert r.x == pytest.approx(xm, abs=1e-15) and r.y == pytest.approx(ym, abs=1e-15)
    assert (r.rho, r.p_value) == spearman_permutation_test(xm, ym, alternative="greater")
    assert r.rho == pytest.approx(stats.spearmanr(xm, ym).statistic, abs=1e-15)
    assert (r.n_units, r.unit, r.exact, r.n_orderings, r.models, r.labels) == (4, "recipes", True, 24, 9, tuple("abcd"))
    # 4 recipes: the most extreme ordering has one-sided p 1/24 and two-sided 2/24, so no two-sided 5% verdict
    assert r.smallest_p == pytest.approx(1 / 24)
    assert recipe_correlation(acc, score, recipes).smallest_p == pytest.approx(2 / 24)


def test_recipe_correlation_monte_carlo_beyond_eight_recipes():
    # 10 recipes in perfect order: no random ordering of 999 reaches rho = 1 (chance 999 / 10! ~ 3e-4): p = 1 / 1000
    recipes = np.repeat(np.arange(10), 2)
    acc = np.repeat(np.linspace(0.1, 0.9, 10), 2) + np.tile([0.0, 0.01], 10)
    r = recipe_correlation(acc, np.exp(acc), recipes, n_resamples=999, seed=1)
    assert (r.rho, r.p_value, r.exact, r.n_orderings, r.smallest_p) == (1.0, 1 / 1000, False, 999, 1 / 1000)


def test_dose_response_on_level_means_has_the_resolution_of_its_levels():
    # 5 levels (standard = 0): 120 orderings, the perfect order is the most extreme: p = 2 / 120 two-sided
    eps = [0.0, 0.0, 0.05, 0.1, 0.1, 0.15, 0.2, 0.2]
    scores = [0.52, 0.48, 0.45, 0.41, 0.39, 0.3, 0.21, 0.2]
    r = dose_response(eps, scores)
    assert (r.rho, r.n_units, r.unit, r.n_orderings, r.models) == (-1.0, 5, "eps levels", 120, 8)
    assert r.p_value == pytest.approx(2 / 120) and r.smallest_p == pytest.approx(2 / 120)
    assert r.labels == (0.0, 0.05, 0.1, 0.15, 0.2)
    assert r.y == pytest.approx((0.5, 0.45, 0.4, 0.3, 0.205), abs=1e-15)
    assert dose_response(eps, scores, alternative="less").p_value == pytest.approx(1 / 120)
    # the model-level test (seeds as replicates) claims far more: 2! 2! 2! / 8! ~ 2e-4 one-sided
    assert dose_response_test(eps, scores, alternative="less")[1] == pytest.approx(8 / math.factorial(8))


def test_dose_response_weights_recipes_equally_within_a_level():
    # two standard recipes at eps 0 (3 seeds and 1 seed): the level is the mean of the two recipe means
    eps = [0.0, 0.0, 0.0, 0.0, 0.1, 0.2]
    scores = [1.0, 1.0, 1.0, 3.0, 0.5, 0.1]
    recipes = ["std8", "std8", "std8", "std20", "pgd0.1", "pgd0.2"]
    assert dose_response(eps, scores, recipes=recipes).y[0] == pytest.approx(2.0)
    assert dose_response(eps, scores).y[0] == pytest.approx(1.5)
    with pytest.raises(ValueError, match="each recipe must have one eps"):
        dose_response([0.0, 0.1], [1.0, 2.0], recipes=["a", "a"])


def test_exact_validity_over_all_orderings_of_recipe_means():
    # under the null every ordering of the 5 recipe means is equally likely: enumerate them (seed counts 3, 1, 2,
    # 1, 3 give model-level ties the unit test must ignore); P(p <= alpha) <= alpha exactly
    recipes = np.repeat(np.arange(5), [3, 1, 2, 1, 3])
    acc = np.repeat([0.1, 0.3, 0.4, 0.6, 0.8], [3, 1, 2, 1, 3])
    ps = np.array(
        [
            recipe_correlation(acc, np.asarray(perm, dtype=float)[recipes], recipes).p_value
            for perm in itertools.permutations(range(5))
        ]
    )
    for alpha in (0.02, 0.05, 0.1, 0.2):
        assert np.mean(ps <= alpha) <= alpha


def _null_b(sims: int, seeds: list[int], seed: int) -> tuple[int, int]:
    """Rejections at 5% (two-sided) of the recipe-level and the checkpoint-level tests under null (b): recipe
    effects on the score (SD 0.05, twice the seed SD) and on robust accuracy (SD 0.1), independent."""
    rng = np.random.default_rng(seed)
    unit = old = 0
    for i in range(sims):
        z = zoo(rng, seeds, recipe_sd=0.05, n_images=20)
        r = recipe_correlation(z.robust_acc, z.model_means, z.recipe, n_resamples=199, seed=i)
        unit += r.p_value <= ALPHA
        old += spearman_permutation_test(z.robust_acc, z.model_means, n_resamples=199, seed=i)[1] <= ALPHA
    return unit, old


@pytest.mark.parametrize(
    "seeds",
    [
        pytest.param([3] * 6, id="6 recipes x 3 seeds (exact)"),
        pytest.param([3, 3, 1, 1, 1, 1, 1, 2, 2, 1, 1], id="the board's 15 checkpoints of 11 recipes (Monte Carlo)"),
    ],
)
def test_recipe_unit_is_calibrated_and_checkpoint_unit_is_not_under_null_b(seeds):
    sims = 600
    unit, old = _null_b(sims, seeds, seed=len(seeds))
    assert unit / sims <= mc_bound(ALPHA, sims)
    assert old / sims > ALPHA + 4 * math.sqrt(ALPHA * (1 - ALPHA) / sims)


def test_recipe_correlation_has_power_against_a_real_relation():
    # the score follows robust accuracy across recipes (slope 1 on accuracy SD 0.1, recipe noise 0.03): 6 recipes
    rng = np.random.default_rng(5)
    sims, hits = 200, 0
    for i in range(sims):
        z = zoo(rng, [3] * 6, recipe_sd=0.03, n_images=20)
        scores = z.model_means + (z.robust_acc - 0.5)
        hits += recipe_correlation(z.robust_acc, scores, z.recipe, seed=i).p_value <= ALPHA
    assert hits / sims > 0.5  # 0.64: with 6 recipes only rho >= 0.89 rejects (two-sided, exact)


def test_dose_response_unit_is_calibrated_and_checkpoint_unit_is_not_under_null_c():
    # 5 eps levels, each one recipe of 3 seeds with its own effect (SD 0.05), no trend
    rng = np.random.default_rng(7)
    eps = [0.0, 0.05, 0.1, 0.15, 0.2]
    sims, unit, old = 600, 0, 0
    for i in range(sims):
        z = zoo(rng, [3] * 5, eps=eps, recipe_sd=0.05, n_images=20)
        unit += dose_response(z.eps, z.model_means, recipes=z.recipe).p_value <= ALPHA
        old += dose_response_test(z.eps, z.model_means, alternative="two-sided", n_resamples=199, seed=i)[1] <= ALPHA
    assert unit / sims <= mc_bound(ALPHA, sims)
    assert unit / sims <= 2 / 120 + 2 * math.sqrt((2 / 120) * (1 - 2 / 120) / sims)  # only rho = +-1 rejects
    assert old / sims > ALPHA + 4 * math.sqrt(ALPHA * (1 - ALPHA) / sims)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: recipe_correlation([0.1, 0.2], [1.0], ["a", "b"]), "same length"),
        (lambda: recipe_correlation([0.1, 0.2], [1.0, 2.0], ["a"]), "values and units"),
        (lambda: recipe_correlation([0.1, np.nan], [1.0, 2.0], ["a", "b"]), "robust_acc contains"),
        (lambda: recipe_correlation([0.1, 0.2], [1.0, 2.0], ["a", "b"], alternative="up"), "alternative"),
        (lambda: dose_response([0.0, 0.1], [1.0, 2.0], recipes=["a"]), "one label per model"),
        (lambda: dose_response([0.0, 0.1], [1.0, 2.0], n_resamples=0), "n_resamples"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_too_few_units_or_no_variation_is_undefined():
    r = recipe_correlation([0.1, 0.2, 0.3], [1.0, 2.0, 3.0], ["a", "a", "a"])
    assert r.n_units == 1 and math.isnan(r.rho) and math.isnan(r.p_value) and math.isnan(r.smallest_p)
    assert math.isnan(dose_response([0.0, 0.1, 0.2], [1.0, 1.0, 1.0]).p_value)
