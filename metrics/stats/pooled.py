"""Recipe comparisons when a recipe has fewer than 2 seeds: its seed-to-seed spread is not estimable from its own
models, so it is borrowed from the recipes that have >= 2 seeds (pooled, with its degrees of freedom), never left
out: an interval over images alone answers "do these two checkpoints differ on these images", not "do these two
training recipes differ" (type I 0.28-0.77 for the recipe question in the issue's simulation of the board).

Model and notation as ``metrics.stats.hierarchical``: ``y[r, s, i] = mu_r + u[r, s] + w[r, i] + e[r, s, i]``, scores
``(S, N)`` per recipe on the same N images. A seed's mean over the images varies around its recipe's mean with
variance ``tau_r^2 = sigma_seed,r^2 + sigma_res,r^2 / N``; the pooled estimate assumes it is the same for every
recipe (homogeneity: stated with every result, and checked by simulation where it fails).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from metrics.stats._checks import Alternative, as_array, check_alternative, check_level


def _scores(value: object, name: str, min_seeds: int) -> np.ndarray:
    y = as_array(value, name, ndim=2)
    if y.shape[0] < min_seeds or y.shape[1] < 2:
        raise ValueError(
            f"{name} must have shape (S, N) with S >= {min_seeds} seed{'s' if min_seeds > 1 else ''} and N >= 2"
            f" images, got {y.shape}"
        )
    return y


@dataclass(frozen=True)
class PooledSeedVariance:
    """Between-seed variance pooled over recipes with >= 2 seeds on the same N images.

    ``seed_mean_var``: ``tau^2``, the pooled sample variance of a seed's image-mean around its recipe's mean
    (``sum_r (S_r - 1) v_r / sum_r (S_r - 1)``), with ``df = sum_r (S_r - 1)``. ``residual``: the pooled seed-by-image
    mean square (``MS_res`` of ``variance_components``), with ``df_residual = sum_r (S_r - 1)(N - 1)``. ``n_recipes``
    and ``n_images``: what was pooled."""

    seed_mean_var: float
    df: int
    residual: float
    df_residual: int
    n_recipes: int
    n_images: int

    @property
    def between_seed_sd(self) -> float:
        """``sqrt(max(0, tau^2 - residual / N))``: the seed SD net of the image noise in a seed's mean."""
        return math.sqrt(max(0.0, self.seed_mean_var - self.residual / self.n_images))


def pooled_seed_variance(recipes: Sequence[np.ndarray | Sequence[Sequence[float]]]) -> PooledSeedVariance:
    """Pool the seed-to-seed variance of the recipes that have >= 2 seeds (recipes with one seed are skipped).

    For recipe r with ``S_r`` seeds, ``v_r = var_s(mean_i y[s, i])`` (ddof 1) has expectation ``tau_r^2`` and, under
    normality, ``S_r - 1`` degrees of freedom; ``MS_res,r = sum (y - m_s - c_i + g)^2 / ((S_r - 1)(N - 1))`` (as
    ``variance_components``). Both are pooled weighted by their degrees of freedom.

    Args:
        recipes: a sequence of float ``(S_r, N)`` arrays, every recipe's per-image scores on the same N images.

    Returns:
        ``PooledSeedVariance``.

    Raises:
        ValueError: a bad shape, different N, non-finite scores, or no recipe with >= 2 seeds.

    Example:
        >>> p = pooled_seed_variance([[[1.0, 2.0], [2.0, 3.0]], [[0.0, 1.0]], [[5.0, 5.0], [5.0, 6.0], [6.0, 6.0]]])
        >>> round(p.seed_mean_var, 4), p.df, round(p.residual, 4), p.df_residual, p.n_recipes
        (0.3333, 3, 0.1111, 3, 2)
    """
    arrays = [_scores(r, f"recipes[{k}]", 1) for k, r in enumerate(recipes)]
    if len({a.shape[1] for a in arrays}) > 1:
        raise ValueError(f"every recipe must score the same N images, got N = {sorted({a.shape[1] for a in arrays})}")
    used = [a for a in arrays if a.shape[0] >= 2]
    if not used:
        raise ValueError("no recipe has >= 2 seeds: the seed-to-seed variance cannot be estimated (train more seeds)")
    n = used[0].shape[1]
    ss_seed = sum(float(a.mean(axis=1).var(ddof=1)) * (a.shape[0] - 1) for a in used)
    df = sum(a.shape[0] - 1 for a in used)
    ss_res = 0.0
    for a in used:
        resid = a - a.mean(axis=1, keepdims=True) - a.mean(axis=0, keepdims=True) + a.mean()
        ss_res += float((resid**2).sum())
    df_res = df * (n - 1)
    return PooledSeedVariance(ss_seed / df, df, ss_res / df_res, df_res, len(used), n)


@dataclass(frozen=True)
class PooledRecipeDifference:
    """Result of ``pooled_recipe_difference``: ``diff`` = mean of recipe A - mean of recipe B, its t interval,
    standard error, Satterthwaite degrees of freedom and p-value, the seeds on each side, the pool used, and
    ``note``, a sentence stating that the seed variance is pooled (for the board)."""

    diff: float
    lo: float
    hi: float
    se: float
    df: float
    p_value: float
    seeds: tuple[int, int]
    pooled: PooledSeedVariance
    note: str


def pooled_recipe_difference(
    scores_a: np.ndarray | Sequence[Sequence[float]],
    scores_b: np.ndarray | Sequence[Sequence[float]],
    pooled: PooledSeedVariance,
    *,
    level: float = 0.95,
    alternative: Alternative = "two-sided",
) -> PooledRecipeDifference:
    """Difference of two recipes' mean scores with a t interval whose seed term is the pooled between-seed variance.

    ``diff = mean(y_A) - mean(y_B)``. ``Var(diff) = tau^2 (1/S_A + 1/S_B) + Var_i(w_A,i - w_B,i) / N``, estimated by
    ``se^2 = tau_hat^2 (1/S_A + 1/S_B) + max(0, var_i(z_i) / N - MS_res (1/S_A + 1/S_B) / N)`` with ``tau_hat^2``
    and ``MS_res`` from ``pooled`` and ``z_i`` the seed-averaged per-image difference (the second term is the image
    term of ``recipe_difference``, whose residual part, not estimable from a single seed, is pooled too). The
    interval is ``diff +- t_{df, (1+level)/2} se`` with Satterthwaite's df over the terms (``pooled.df`` for the
    seed term, ``N - 1`` and ``pooled.df_residual`` for the image terms); the p-value is the t test of diff = 0.

    When both recipes have >= 3 seeds use ``recipe_difference`` (each recipe's own seed variance, no homogeneity
    assumption). Calibration (``tests/metrics/stats/test_pooled.py``, 95% nominal, two-sided 5% test, board-like
    variance components, pool of 2 or 6 three-seed recipes): see that module's docstring for the simulated type-I
    errors; they hold when the single-seed recipe's seed variance equals the pool's and grow when it is larger.

    Args:
        scores_a: float ``(S_A, N)``, recipe A's per-image scores, one row per seed, S_A >= 1.
        scores_b: float ``(S_B, N)``, recipe B's, the same N images in the same order, S_B >= 1.
        pooled: ``pooled_seed_variance`` of the board's recipes with >= 2 seeds, on the same N images.
        level: coverage of the interval.
        alternative: of the p-value ("greater": mu_A > mu_B).

    Returns:
        ``PooledRecipeDifference``.

    Raises:
        ValueError: bad shapes, different N (between the recipes or with the pool), non-finite scores or bad options.

    Example:
        >>> pool = pooled_seed_variance([[[1.0, 2.0, 3.0], [1.5, 2.5, 3.0]], [[0.0, 1.0, 0.5], [0.2, 1.0, 0.9]]])
        >>> r = pooled_recipe_difference([[2.0, 3.0, 4.0]], [[1.0, 2.0, 3.5], [1.2, 2.4, 3.1]], pool)
        >>> round(r.diff, 3), round(r.lo, 3), round(r.hi, 3), round(r.df, 2), round(r.p_value, 4), r.seeds
        (0.8, -0.224, 1.824, 2.0, 0.0783, (1, 2))
    """
    a, b = _scores(scores_a, "scores_a", 1), _scores(scores_b, "scores_b", 1)
    level = check_level(level)
    check_alternative(alternative)
    if not isinstance(pooled, PooledSeedVariance):
        raise ValueError(f"pooled must be a PooledSeedVariance (pooled_seed_variance), got {type(pooled).__name__}")
    n = a.shape[1]
    if b.shape[1] != n or pooled.n_images != n:
        raise ValueError(
            f"scores_a, scores_b and the pool must share the same N images, got {n}, {b.shape[1]}, {pooled.n_images}"
        )
    s_a, s_b = a.shape[0], b.shape[0]
    share = 1 / s_a + 1 / s_b
    diff = float(a.mean() - b.mean())
    z = a.mean(axis=0) - b.mean(axis=0)
    seed_term = pooled.seed_mean_var * share
    res_term = pooled.residual * share / n
    image_term = float(z.var(ddof=1)) / n - res_term
    terms = [(seed_term, pooled.df)]
    if image_term > 0:
        terms += [(float(z.var(ddof=1)) / n, n - 1), (res_term, pooled.df_residual)]
    var = seed_term + max(0.0, image_term)
    denom = sum(v * v / k for v, k in terms)
    sd = math.sqrt(pooled.seed_mean_var)
    note = (
        f"seed-to-seed variance pooled from {pooled.n_recipes} recipe{'s' if pooled.n_recipes != 1 else ''}"
        f" with >= 2 seeds (SD of a seed's mean {sd:.3g}, {pooled.df} df; {s_a} vs {s_b} seeds here)"
    )
    if var <= 0 or denom <= 0:
        p = {"greater": float(diff <= 0), "less": float(diff >= 0)}.get(alternative, float(diff == 0))
        return PooledRecipeDifference(diff, diff, diff, 0.0, math.inf, p, (s_a, s_b), pooled, note)
    from scipy import stats  # on first use: a run's parent imports this package but never calls this

    se, df = math.sqrt(var), var * var / denom
    half = float(stats.t.ppf((1 + level) / 2, df)) * se
    t = diff / se
    p = {"greater": stats.t.sf(t, df), "less": stats.t.cdf(t, df)}.get(alternative, 2 * stats.t.sf(abs(t), df))
    return PooledRecipeDifference(diff, diff - half, diff + half, se, df, float(p), (s_a, s_b), pooled, note)


MIN_SEEDS = 3  # seeds each recipe needs for a recipe verdict (recipe_difference is calibrated from 3 vs 3)


@dataclass(frozen=True)
class RecipeComparison:
    """Result of ``recipe_comparison``: the difference of two recipes' means, its interval, p-value and df, which
    estimator gave them (``method``), whether a verdict may be drawn from it (``verdict``) and, if not, why."""

    diff: float
    lo: float
    hi: float
    p_value: float
    df: float
    seeds: tuple[int, int]
    method: str
    verdict: bool
    note: str


def recipe_comparison(
    scores_a: np.ndarray | Sequence[Sequence[float]],
    scores_b: np.ndarray | Sequence[Sequence[float]],
    pooled: PooledSeedVariance | None,
    *,
    level: float = 0.95,
    alternative: Alternative = "two-sided",
) -> RecipeComparison:
    """Two recipes compared as recipes, by the rule of issue 24: with >= ``MIN_SEEDS`` seeds on both sides, the
    mixed-model t interval (``recipe_difference``, each recipe's own seed variance: calibrated, a verdict may be
    drawn); otherwise the pooled-seed-variance interval (``pooled_recipe_difference``), shown with its note and no
    verdict (calibrated only if the recipe's seed variance equals the pool's, which cannot be checked with so few
    seeds; see ``tests/metrics/stats/test_pooled.py``); with no pool (no recipe has >= 2 seeds), NaN and no verdict.
    Never an interval over images alone.

    Args:
        scores_a: float ``(S_A, N)``, recipe A's per-image scores, one row per seed.
        scores_b: float ``(S_B, N)``, recipe B's, on the same N images.
        pooled: ``pooled_seed_variance`` of the board's recipes (None when none has >= 2 seeds).
        level: coverage of the interval.
        alternative: of the p-value ("greater": mu_A > mu_B).

    Returns:
        ``RecipeComparison``; ``method`` is "recipes (seeds x images)", "pooled seed variance" or "none".

    Raises:
        ValueError: bad shapes, different N, non-finite scores or bad options.

    Example:
        >>> a, b = [[1.0, 2.0, 3.0]], [[0.5, 1.5, 2.5], [0.7, 1.7, 2.2]]
        >>> r = recipe_comparison(a, b, pooled_seed_variance([b]))
        >>> r.method, r.verdict, r.seeds, round(r.diff, 3)
        ('pooled seed variance', False, (1, 2), 0.483)
    """
    from metrics.stats.hierarchical import recipe_difference

    a, b = _scores(scores_a, "scores_a", 1), _scores(scores_b, "scores_b", 1)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"scores_a and scores_b must score the same N images, got {a.shape[1]} and {b.shape[1]}")
    seeds = (a.shape[0], b.shape[0])
    if min(seeds) >= MIN_SEEDS:
        r = recipe_difference(a, b, level=level, alternative=alternative)
        return RecipeComparison(r.diff, r.lo, r.hi, r.p_value, r.df, seeds, "recipes (seeds x images)", True, "")
    short = f"fewer than {MIN_SEEDS} seeds ({seeds[0]} vs {seeds[1]}): no recipe verdict"
    if pooled is None:
        diff = float(a.mean() - b.mean())
        note = f"{short}; no recipe has >= 2 seeds, so the seed-to-seed variance is unknown"
        return RecipeComparison(diff, math.nan, math.nan, math.nan, math.nan, seeds, "none", False, note)
    r = pooled_recipe_difference(a, b, pooled, level=level, alternative=alternative)
    return RecipeComparison(
        r.diff, r.lo, r.hi, r.p_value, r.df, seeds, "pooled seed variance", False, f"{short}; {r.note}"
    )


__all__ = [
    "MIN_SEEDS",
    "PooledRecipeDifference",
    "PooledSeedVariance",
    "RecipeComparison",
    "pooled_recipe_difference",
    "pooled_seed_variance",
    "recipe_comparison",
]
