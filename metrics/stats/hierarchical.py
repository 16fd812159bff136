"""Recipe-level comparisons with training seeds as replicates.

Data for a recipe (a training procedure): ``scores`` float ``(S, N)``, the per-image scores of its S trained
models (seeds) on the same N images, in the same image order for every recipe. The model behind the estimates:

    y[r, s, i] = mu_r + u[r, s] + w[r, i] + e[r, s, i]

with seed effects ``u ~ (0, sigma_seed^2)``, image effects ``w`` (the recipe's view of image i, shared by its
seeds and possibly correlated across recipes) and seed-by-image noise ``e ~ (0, sigma_res^2)``. The estimand of a
comparison is ``mu_A - mu_B``: the difference of the recipes' means over seeds and images (both random).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from metrics.stats._checks import Alternative, as_array, check_alternative, check_level, check_positive_int
from metrics.stats.permutation import spearman_permutation_test

_CHUNK = 1 << 22  # values per bootstrap batch (bounds memory)


def _recipe(scores: object, name: str) -> np.ndarray:
    y = as_array(scores, name, ndim=2)
    if y.shape[0] < 2 or y.shape[1] < 2:
        raise ValueError(f"{name} must have shape (S, N) with S >= 2 seeds and N >= 2 images, got {y.shape}")
    return y


def _pair(scores_a: object, scores_b: object) -> tuple[np.ndarray, np.ndarray]:
    a, b = _recipe(scores_a, "scores_a"), _recipe(scores_b, "scores_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"scores_a and scores_b must score the same N images, got {a.shape[1]} and {b.shape[1]}")
    return a, b


@dataclass(frozen=True)
class VarianceComponents:
    """Variance components of one recipe's ``(S, N)`` scores (method of moments, truncated at 0).

    ``between_seed``: sigma_seed^2, the variance of a seed's true mean score. ``within_seed``: the pooled variance
    of per-image scores within a seed (``image + residual``). ``image``: the variance of the image effect shared
    by the recipe's seeds. ``residual``: sigma_res^2, seed-by-image noise."""

    between_seed: float
    within_seed: float
    image: float
    residual: float
    n_seeds: int
    n_images: int


def variance_components(scores: Sequence[Sequence[float]] | np.ndarray) -> VarianceComponents:
    """Between-seed and within-seed variance components of one recipe (two-way crossed random-effects ANOVA).

    With seed means ``m_s``, image means ``c_i`` and grand mean ``g`` of ``y`` ``(S, N)``:
    ``MS_seed = N sum_s (m_s - g)^2 / (S - 1)``, ``E = sigma_res^2 + N sigma_seed^2``;
    ``MS_image = S sum_i (c_i - g)^2 / (N - 1)``, ``E = sigma_res^2 + S sigma_image^2``;
    ``MS_res = sum (y - m_s - c_i + g)^2 / ((S - 1)(N - 1))``, ``E = sigma_res^2``. Hence
    ``between_seed = (MS_seed - MS_res) / N``, ``image = (MS_image - MS_res) / S``, ``residual = MS_res`` (the
    first two truncated at 0), and ``within_seed = mean_s var_i(y[s, i])`` (ddof 1). Using MS_res rather than the
    within-seed variance for the seed component keeps it unbiased when images differ in difficulty.

    Args:
        scores: float ``(S, N)``, finite, S >= 2 seeds, N >= 2 images.

    Returns:
        ``VarianceComponents``.

    Raises:
        ValueError: bad shape or non-finite scores.

    Example:
        >>> v = variance_components([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0]])
        >>> v.between_seed, v.within_seed, v.image, v.residual
        (0.5, 1.0, 1.0, 0.0)
    """
    y = _recipe(scores, "scores")
    s, n = y.shape
    seed_means, image_means, grand = y.mean(axis=1), y.mean(axis=0), y.mean()
    ms_seed = n * float(((seed_means - grand) ** 2).sum()) / (s - 1)
    ms_image = s * float(((image_means - grand) ** 2).sum()) / (n - 1)
    resid = y - seed_means[:, None] - image_means[None, :] + grand
    ms_res = float((resid**2).sum()) / ((s - 1) * (n - 1))
    within = float(y.var(axis=1, ddof=1).mean())
    return VarianceComponents(
        between_seed=max(0.0, (ms_seed - ms_res) / n),
        within_seed=within,
        image=max(0.0, (ms_image - ms_res) / s),
        residual=ms_res,
        n_seeds=s,
        n_images=n,
    )


@dataclass(frozen=True)
class RecipeDifference:
    """Result of ``recipe_difference``: ``diff`` = mean of recipe A - mean of recipe B, its interval, standard error
    and degrees of freedom, the p-value of the stated alternative, and both recipes' variance components."""

    diff: float
    lo: float
    hi: float
    se: float
    df: float
    p_value: float
    components_a: VarianceComponents
    components_b: VarianceComponents


def recipe_difference(
    scores_a: Sequence[Sequence[float]] | np.ndarray,
    scores_b: Sequence[Sequence[float]] | np.ndarray,
    *,
    level: float = 0.95,
    alternative: Alternative = "two-sided",
) -> RecipeDifference:
    """Difference of two recipes' mean scores with a mixed-model (Satterthwaite t) interval and p-value.

    ``diff = mean(y_A) - mean(y_B)`` (each the mean over its seeds of the seeds' image means). Its variance is
    ``sigma_seed,A^2 / S_A + sigma_seed,B^2 / S_B + (sigma_res,A^2 / S_A + sigma_res,B^2 / S_B) / N
    + Var_i(w_A,i - w_B,i) / N``, estimated without bias by
    ``se^2 = v_A / S_A + v_B / S_B + max(0, var_i(z_i) - MS_res,A / S_A - MS_res,B / S_B) / N``,
    with ``v_r`` the sample variance of recipe r's seed means, ``z_i`` the seed-averaged per-image difference
    (images paired across recipes) and ``MS_res`` as in ``variance_components``. The interval is
    ``diff +- t_{df, (1+level)/2} se`` with Satterthwaite's ``df`` (``(sum_j c_j)^2 / sum_j c_j^2 / df_j`` over
    the terms ``c_j`` of ``se^2``, of ``S_r - 1``, ``N - 1`` and ``(S_r - 1)(N - 1)`` degrees of freedom); the
    p-value is the t test of ``diff = 0``.

    This is the small-sample-correct counterpart of ``two_level_bootstrap``: with 3 seeds per recipe the seed
    level has only ~4 degrees of freedom, which a bootstrap cannot know (it resamples 3 seeds as if they were the
    population: its variance is short by a factor (S - 1)/S and its quantiles are normal, not t). Coverage in
    simulation (95% nominal, sigma_seed = 0.2, sigma_res = 1, N = 100..200): 0.94-0.97 for S = 3..10, while
    ``two_level_bootstrap`` gives 0.86-0.92 at S = 3 and 0.94-0.97 at S = 10.

    Args:
        scores_a: float ``(S_A, N)``, recipe A's per-image scores, one row per seed, S_A >= 2.
        scores_b: float ``(S_B, N)``, recipe B's, the same N images in the same order, S_B >= 2.
        level: coverage of the interval.
        alternative: of the p-value ("greater": mu_A > mu_B).

    Returns:
        ``RecipeDifference``; if every term of ``se`` is 0 the interval is ``(diff, diff)`` and p is 0 or 1.

    Raises:
        ValueError: bad shapes (fewer than 2 seeds: the seed spread is not estimable), different N, non-finite
            scores, or bad options.

    Example:
        >>> a = [[1.0, 2.0, 3.0], [1.5, 2.5, 3.5], [2.0, 3.0, 4.0]]
        >>> b = [[0.0, 1.0, 2.0], [0.5, 1.5, 2.5]]
        >>> r = recipe_difference(a, b)
        >>> round(r.diff, 3), round(r.lo, 3), round(r.hi, 3), round(r.se, 3), round(r.df, 2), round(r.p_value, 4)
        (1.25, 0.006, 2.494, 0.382, 2.88, 0.0494)
    """
    a, b = _pair(scores_a, scores_b)
    level = check_level(level)
    check_alternative(alternative)
    comp_a, comp_b = variance_components(a), variance_components(b)
    n = a.shape[1]
    diff = float(a.mean() - b.mean())
    # (value, degrees of freedom) of every term of se^2
    terms = [(float(y.mean(axis=1).var(ddof=1)) / y.shape[0], y.shape[0] - 1) for y in (a, b)]
    z = a.mean(axis=0) - b.mean(axis=0)
    res_terms = [(c.residual / (c.n_seeds * n), (c.n_seeds - 1) * (n - 1)) for c in (comp_a, comp_b)]
    image_term = float(z.var(ddof=1)) / n - sum(v for v, _ in res_terms)
    if image_term > 0:
        terms += [(float(z.var(ddof=1)) / n, n - 1), *res_terms]
    var = sum(v for v, _ in terms[:2]) + max(0.0, image_term)
    denom = sum(v * v / k for v, k in terms)
    if var <= 0 or denom <= 0:
        p = {"greater": float(diff <= 0), "less": float(diff >= 0)}.get(alternative, float(diff == 0))
        return RecipeDifference(diff, diff, diff, 0.0, math.inf, p, comp_a, comp_b)
    from scipy import stats  # imported on first use: a run's parent imports this package but never calls this

    se, df = math.sqrt(var), var * var / denom
    half = float(stats.t.ppf((1 + level) / 2, df)) * se
    t = diff / se
    p = {"greater": stats.t.sf(t, df), "less": stats.t.cdf(t, df)}.get(alternative, 2 * stats.t.sf(abs(t), df))
    return RecipeDifference(diff, diff - half, diff + half, se, df, float(p), comp_a, comp_b)


def _resampled_seed_mean(rng: np.random.Generator, y: np.ndarray, r: int) -> np.ndarray:
    """Per-image mean over S seeds drawn with replacement from ``y`` ``(S, N)``, for r draws: ``(r, N)``."""
    s = y.shape[0]
    return rng.multinomial(s, np.full(s, 1 / s), size=r) @ y / s


def two_level_bootstrap(
    scores_a: Sequence[Sequence[float]] | np.ndarray,
    scores_b: Sequence[Sequence[float]] | np.ndarray,
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Difference of two recipes' mean scores with a two-level (seeds, then images) percentile bootstrap interval.

    Each replicate resamples S_A seeds of A and S_B seeds of B with replacement (within recipe), then N image
    indices with replacement, the same indices for every model (all were scored on the same images), and
    computes ``mean(y_A*) - mean(y_B*)``; ``(lo, hi)`` are the replicates' ``(1 -+ level)/2`` quantiles
    (``numpy.random.default_rng(seed)``). This is Owen's (2007) pigeonhole bootstrap for the crossed seeds x
    images design: it counts the seed-by-image noise twice (conservative when seeds vary little) and the seed
    spread with a factor (S - 1)/S and normal quantiles (anti-conservative with few seeds: coverage 0.86-0.92 at
    95% nominal with 3 seeds per recipe, 0.94-0.97 with 10, in simulation with sigma_seed = 0.2, sigma_res = 1,
    N = 100..200). With fewer than ~10 seeds per recipe use ``recipe_difference``.

    Args:
        scores_a: float ``(S_A, N)``, one row per seed, S_A >= 2.
        scores_b: float ``(S_B, N)``, the same N images in the same order, S_B >= 2.
        n_resamples: bootstrap replicates.
        level: coverage of the interval.
        seed: seed of the resampling.

    Returns:
        ``(diff, lo, hi)``.

    Raises:
        ValueError: bad shapes, different N, non-finite scores or bad options.

    Example:
        >>> a = [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]
        >>> two_level_bootstrap(a, [[0.5, 1.5, 2.5], [0.5, 1.5, 2.5]])
        (0.5, 0.5, 0.5)
    """
    a, b = _pair(scores_a, scores_b)
    check_positive_int(n_resamples, "n_resamples")
    level = check_level(level)
    rng = np.random.default_rng(seed)
    n = a.shape[1]
    boot = np.empty(n_resamples)
    rows = max(1, _CHUNK // (n * (a.shape[0] + b.shape[0])))
    for start in range(0, n_resamples, rows):
        r = min(rows, n_resamples - start)
        z = _resampled_seed_mean(rng, a, r) - _resampled_seed_mean(rng, b, r)  # (r, N)
        counts = rng.multinomial(n, np.full(n, 1 / n), r)  # image draw shared by both recipes
        boot[start : start + r] = (counts * z).sum(axis=1) / n
    alpha = (1 - level) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha])
    return float(a.mean() - b.mean()), float(lo), float(hi)


def dose_response_test(
    eps: Sequence[float] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    *,
    alternative: Alternative = "greater",
    n_resamples: int = 9999,
    seed: int = 0,
) -> tuple[float, float]:
    """Dose-response across the training eps: Spearman's rho between eps and per-model scores, with seeds as
    replicates, and its exact (up to 8 models) or Monte Carlo permutation p-value.

    Superseded by ``metrics.stats.units.dose_response`` (eps levels as the units): permuting checkpoints is exact
    only when the models of one eps are as different from each other as from those of another eps, i.e. when eps
    levels (recipes) have no effect of their own. With level effects and no trend its type I is 0.28-0.29 at a
    nominal 5% (issue 24; ``tests/metrics/stats/test_units.py``). Kept for the board until it moves to the levels.

    One entry per trained model: its recipe's ``eps`` (0 for standard training; seeds of a recipe share eps, i.e.
    ties, handled by average ranks) and its ``score`` (e.g. the model's mean over the shared images). Under the
    null (score unrelated to eps) the models' scores are exchangeable, so permuting scores across models gives an
    exact test (``spearman_permutation_test``); "greater" tests for scores rising with eps.

    Why Spearman: it is the statistic of the across-model correlation, so one exact permutation engine serves
    both; it tests a monotone (not necessarily linear) trend; with tied eps it is the rank analogue of
    Jonckheere-Terpstra (the Kendall-type count of ordered pairs across eps groups), with similar power.
    Page's test is not applicable: it needs blocks matched across doses, and seed k of one eps has nothing in
    common with seed k of another.

    Args:
        eps: float ``(M,)``, each model's training eps.
        scores: float ``(M,)``, each model's score, same order.
        alternative: "greater" (scores increase with eps), "less" or "two-sided".
        n_resamples: Monte Carlo orderings when M > 8.
        seed: seed of the Monte Carlo orderings.

    Returns:
        ``(rho, p_value)``; NaN, NaN when eps or scores are constant.

    Raises:
        ValueError: bad shapes, lengths, non-finite values or options.

    Example:
        >>> dose_response_test([0.0, 0.0, 0.1, 0.1, 0.2, 0.2], [0.1, 0.2, 0.3, 0.35, 0.5, 0.6])
        (0.9561828874675149, 0.011111111111111112)
    """
    x, y = as_array(eps, "eps", ndim=1), as_array(scores, "scores", ndim=1)
    if x.size != y.size or x.size < 2:
        raise ValueError(f"eps and scores must have the same length >= 2, got {x.size} and {y.size}")
    return spearman_permutation_test(x, y, alternative=alternative, n_resamples=n_resamples, seed=seed)


__all__ = [
    "RecipeDifference",
    "VarianceComponents",
    "dose_response_test",
    "recipe_difference",
    "two_level_bootstrap",
    "variance_components",
]
