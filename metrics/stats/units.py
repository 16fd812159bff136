"""Rank correlations across models with the training recipe (or the training eps) as the unit: one point per unit,
the mean of its models, and an exact permutation test over the units.

Why not one point per checkpoint: seeds of a recipe share the recipe's effect on robust accuracy *and* on a score,
so under a null where recipes differ on both but the two are unrelated, checkpoints of one recipe sit together on
both axes. Permuting checkpoints treats them as independent and rejects far too often (type I 0.13 for the board's
former 15 checkpoints of 11 recipes, 0.25 for 6 recipes of 3 seeds, at a nominal 5%; recipe means: 0.05 and
0.045, ``tests/metrics/stats/test_units.py``). The
recipes themselves are the exchangeable units under that null: permuting recipe means is exact whatever the seed
and image noise. The same holds for the dose-response test, whose units are the eps levels (the standard recipe is
eps 0): permuting its checkpoints over the levels gave type I 0.29 under a no-trend null with level effects (the
levels: 0.022).

The price is resolution: with k units the exact test has k! orderings, so the smallest two-sided p is 2 / k!
(5 units: 2 / 120 = 0.0167; 4 units: 2 / 24 = 0.083, no test can reject at 5%). ``UnitCorrelation.smallest_p``
states it.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from metrics.stats._checks import Alternative, as_array, check_alternative, check_positive_int
from metrics.stats.permutation import MAX_EXACT, spearman_permutation_test


@dataclass(frozen=True)
class UnitCorrelation:
    """Spearman's rho between two quantities over ``n_units`` units and its permutation p-value.

    ``unit`` names the units ("recipes", "eps levels"); ``labels``, ``x`` and ``y`` are the units and their mean
    values (in order of first appearance), ``models`` how many models (checkpoints) the means average. ``exact``:
    every ordering of the units was enumerated (``n_orderings = n_units!``); otherwise ``n_orderings`` Monte Carlo
    orderings with ``p = (1 + b) / (1 + B)``. ``smallest_p``: the smallest p-value this test can return for this x
    and alternative (its resolution; above 0.05 no verdict is possible). rho and p are NaN when fewer than 2 units
    are left or x or y is constant over the units."""

    rho: float
    p_value: float
    n_units: int
    unit: str
    exact: bool
    n_orderings: int
    smallest_p: float
    alternative: str
    labels: tuple[Hashable, ...]
    x: tuple[float, ...]
    y: tuple[float, ...]
    models: int


def unit_means(
    values: Sequence[float] | np.ndarray, units: Sequence[Hashable]
) -> tuple[tuple[Hashable, ...], np.ndarray]:
    """The mean of ``values`` within each unit, units in order of first appearance.

    Args:
        values: float ``(M,)``, one value per model, finite.
        units: ``(M,)`` hashable labels (a recipe label, an eps), the unit of each model.

    Returns:
        ``(labels, means)``: the K distinct units and float64 ``(K,)`` means.

    Raises:
        ValueError: bad shape, non-finite values, or ``units`` of another length.

    Example:
        >>> labels, means = unit_means([1.0, 3.0, 10.0, 2.0], ["a", "a", "b", "a"])
        >>> labels, means.tolist()
        (('a', 'b'), [2.0, 10.0])
    """
    v = as_array(values, "values", ndim=1)
    keys = list(units)
    if len(keys) != v.size:
        raise ValueError(f"values and units must have the same length, got {v.size} and {len(keys)}")
    labels = tuple(dict.fromkeys(keys))
    index = {label: k for k, label in enumerate(labels)}
    codes = np.array([index[u] for u in keys], dtype=np.intp)
    sums = np.bincount(codes, weights=v, minlength=len(labels))
    return labels, sums / np.bincount(codes, minlength=len(labels))


def _smallest_p(x: np.ndarray, alternative: str, exact: bool, n_resamples: int) -> float:
    """The p-value of y ordered as x (descending for "less"): the most extreme outcome the test can see."""
    if not exact:
        return 1.0 / (n_resamples + 1)
    order = np.argsort(np.argsort(x, kind="stable"), kind="stable").astype(np.float64)
    y = -order if alternative == "less" else order
    return spearman_permutation_test(x, y, alternative=alternative)[1]


def _correlate(
    x: np.ndarray,
    y: np.ndarray,
    labels: tuple[Hashable, ...],
    unit: str,
    models: int,
    alternative: str,
    n_resamples: int,
    seed: int,
) -> UnitCorrelation:
    k = x.size
    exact = k <= MAX_EXACT
    n_orderings = math.factorial(k) if exact else n_resamples
    if k < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        rho, p, smallest = math.nan, math.nan, math.nan
    else:
        rho, p = spearman_permutation_test(x, y, alternative=alternative, n_resamples=n_resamples, seed=seed)
        smallest = _smallest_p(x, alternative, exact, n_resamples)
    return UnitCorrelation(
        rho=rho,
        p_value=p,
        n_units=k,
        unit=unit,
        exact=exact,
        n_orderings=n_orderings,
        smallest_p=smallest,
        alternative=alternative,
        labels=labels,
        x=tuple(float(v) for v in x),
        y=tuple(float(v) for v in y),
        models=models,
    )


def recipe_correlation(
    robust_acc: Sequence[float] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    recipes: Sequence[Hashable],
    *,
    alternative: Alternative = "two-sided",
    n_resamples: int = 9999,
    seed: int = 0,
) -> UnitCorrelation:
    """Spearman's rho between recipes' mean robust accuracy and mean score, one point per recipe, with an exact
    permutation p-value over the recipes (all k! orderings up to 8 recipes; ``n_resamples`` Monte Carlo orderings
    from ``numpy.random.default_rng(seed)`` beyond, ``p = (1 + b) / (1 + B)``).

    Each recipe's point is the mean over its seeds (models) of their robust accuracies and of their scores (each
    model's score: e.g. its mean over the shared images), so a recipe counts once however many seeds it has. Null
    hypothesis: the recipes' mean scores are exchangeable given their robust accuracies (the score is unrelated to
    robustness across recipes); valid whatever the seed-to-seed and image-to-image noise.

    Args:
        robust_acc: float ``(M,)``, each model's robust accuracy.
        scores: float ``(M,)``, each model's score, same order.
        recipes: ``(M,)`` hashable, each model's recipe label (seeds of one recipe share it).
        alternative: "two-sided", "greater" (scores rise with robust accuracy) or "less".
        n_resamples: Monte Carlo orderings beyond 8 recipes.
        seed: seed of the Monte Carlo orderings.

    Returns:
        ``UnitCorrelation`` with ``unit="recipes"``.

    Raises:
        ValueError: bad shapes, different lengths, non-finite values or bad options.

    Example:
        >>> r = recipe_correlation([0.1, 0.12, 0.5, 0.52, 0.8], [0.3, 0.32, 0.2, 0.22, 0.1], ["a", "a", "b", "b", "c"])
        >>> r.rho, r.p_value, r.n_units, r.unit, r.exact, r.smallest_p, r.models
        (-1.0, 0.3333333333333333, 3, 'recipes', True, 0.3333333333333333, 5)
    """
    x = as_array(robust_acc, "robust_acc", ndim=1)
    y = as_array(scores, "scores", ndim=1)
    if x.size != y.size:
        raise ValueError(f"robust_acc and scores must have the same length, got {x.size} and {y.size}")
    check_alternative(alternative)
    check_positive_int(n_resamples, "n_resamples")
    labels, xm = unit_means(x, recipes)
    _, ym = unit_means(y, recipes)
    return _correlate(xm, ym, labels, "recipes", x.size, alternative, n_resamples, seed)


def dose_response(
    eps: Sequence[float] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    *,
    recipes: Sequence[Hashable] | None = None,
    alternative: Alternative = "two-sided",
    n_resamples: int = 9999,
    seed: int = 0,
) -> UnitCorrelation:
    """Dose-response over the training eps: Spearman's rho between the eps levels and their mean scores, one point
    per level (standard training is eps 0), exact permutation p-value over the levels (k levels: k! orderings; the
    smallest two-sided p is 2 / k!, e.g. 2 / 120 with 5 levels).

    A level's point is the mean of its recipes' means when ``recipes`` is given (each recipe the mean of its seeds;
    e.g. two standard recipes at eps 0 count equally), else the mean of its models. Null hypothesis: no trend, the
    levels' means are exchangeable; valid whatever the seed and image noise and whatever each level's own effect.

    Args:
        eps: float ``(M,)``, each model's training eps (0 for standard training).
        scores: float ``(M,)``, each model's score, same order.
        recipes: optional ``(M,)`` hashable recipe labels (a recipe has one eps).
        alternative: "two-sided", "greater" (scores rise with eps) or "less".
        n_resamples: Monte Carlo orderings beyond 8 levels.
        seed: seed of the Monte Carlo orderings.

    Returns:
        ``UnitCorrelation`` with ``unit="eps levels"``, ``labels`` the eps levels.

    Raises:
        ValueError: bad shapes, different lengths, non-finite values, a recipe with two eps, or bad options.

    Example:
        >>> r = dose_response([0, 0, 0.1, 0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.4, 0.45, 0.3, 0.2, 0.1])
        >>> r.rho, r.p_value, r.n_units, r.unit, r.n_orderings, r.smallest_p
        (-1.0, 0.016666666666666666, 5, 'eps levels', 120, 0.016666666666666666)
    """
    x = as_array(eps, "eps", ndim=1)
    y = as_array(scores, "scores", ndim=1)
    if x.size != y.size:
        raise ValueError(f"eps and scores must have the same length, got {x.size} and {y.size}")
    check_alternative(alternative)
    check_positive_int(n_resamples, "n_resamples")
    models = x.size
    if recipes is not None:
        if len(recipes) != models:
            raise ValueError(f"recipes must have one label per model ({models}), got {len(recipes)}")
        names, recipe_eps = unit_means(x, recipes)
        _, recipe_scores = unit_means(y, recipes)
        spread = {r: [] for r in names}
        for r, e in zip(recipes, x.tolist(), strict=True):
            spread[r].append(e)
        mixed = [r for r, values in spread.items() if len(set(values)) > 1]
        if mixed:
            raise ValueError(f"each recipe must have one eps; {mixed[0]!r} has {sorted(set(spread[mixed[0]]))}")
        x, y = recipe_eps, recipe_scores
    levels, ym = unit_means(y, x.tolist())
    xm = np.asarray(levels, dtype=np.float64)
    return _correlate(xm, ym, tuple(levels), "eps levels", models, alternative, n_resamples, seed)


__all__ = ["UnitCorrelation", "dose_response", "recipe_correlation", "unit_means"]
