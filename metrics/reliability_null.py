"""When is a metric reliable? Against a noise metric's null, simulated in the same setting.

MetaQuantus's criteria (``metrics.reliability``) have no fixed chance level: a metric that returns noise unrelated to
its inputs scores noise resilience ``NR = (IAC_NR + IEC_NR) / 2`` and adversary reactivity ``AR = (IAC_AR + IEC_AR)
/ 2`` around 0.5 with a spread set by the number of images each perturbation keeps, of explanation methods L,
iterations I and perturbations K. The old rule "reliable when both exceed 0.5" declared such a metric reliable in
14% of replications. Here a metric is reliable when both criteria exceed the upper ``1 - alpha`` quantile of a noise
metric's criteria in the same setting, i.e. when each criterion's Monte Carlo p-value against that null,
``p = (1 + #{null >= observed}) / (1 + B)``, is at most ``alpha``: a test that is exact (P(p <= alpha) <= alpha for
a noise metric), so a noise metric passes both in at most ``alpha`` of replications.

The null needs no model: a noise metric's scores are i.i.d. continuous draws whatever the model, input, attribution
or perturbation, so its criteria depend only on how many images each perturbation kept (``kept_nr``, ``kept_ar`` of
the actual run, per test), L, I and K, and hardly on the noise's distribution: each perturbation's Wilcoxon p, the
share of preserved method orders and of worse scores are distribution-free; only their dependence across the K
perturbations (which share the unperturbed scores) is not, and it moves the 95% quantiles of NR and AR by at most
0.004 between normal, Cauchy, uniform and exponential noise (4,000 draws each, 16 images, 2 x 5 perturbations).
``noise_criteria`` draws B such metrics (standard normal scores) and computes their criteria in a batch, with the
estimator of ``meta_consistency``: the same Wilcoxon p-value (exact signed-rank distribution up to 50 kept images,
scipy's normal approximation with no continuity correction beyond, as ``scipy.stats.wilcoxon``), the same IEC
shares and the same averaging over methods, perturbations, iterations and tests;
``tests/metrics/test_reliability_null.py`` checks it equals ``meta_consistency`` on the same draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from metrics.reliability import ReliabilityResult

ALPHA = 0.05
NULL_DRAWS = 999
EXACT_MAX = 50  # scipy.stats.wilcoxon's exact signed-rank distribution up to this many differences
Status = Literal["reliable", "not reliable", "not assessed"]


@lru_cache(maxsize=EXACT_MAX + 1)
def _two_sided_table(n: int) -> np.ndarray:
    """Two-sided exact Wilcoxon signed-rank p-value for every statistic ``T+ = 0 .. n(n+1)/2`` with n non-zero,
    untied differences: ``min(1, 2 min(P(T >= t), P(T <= t)))`` under the null (each rank's sign a fair coin)."""
    top = n * (n + 1) // 2
    counts = np.zeros(top + 1)
    counts[0] = 1.0
    for r in range(1, n + 1):  # subsets of {1..n} by their sum: add rank r to every subset of {1..r-1}
        counts[r:] = counts[r:] + counts[:-r].copy()
    pmf = counts / counts.sum()
    lower, upper = np.cumsum(pmf), np.cumsum(pmf[::-1])[::-1]
    return np.minimum(1.0, 2 * np.minimum(lower, upper))


def signed_rank_p(t_plus: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Two-sided Wilcoxon signed-rank p-value of ``T+`` (sum of the ranks of the positive differences among n
    non-zero, untied differences), as ``scipy.stats.wilcoxon(..., zero_method="zsplit")`` returns it: exact for
    n <= 50, normal approximation beyond (no continuity correction, scipy's default); NaN for n = 0.

    Args:
        t_plus: integer-valued float ``(...)``.
        n: int ``(...)``, broadcastable with ``t_plus``.

    Returns:
        float64 ``(...)``.

    Example:
        >>> signed_rank_p(np.array([0.0, 3.0, 6.0, 10.0]), np.array([4, 4, 4, 4])).tolist()
        [0.125, 0.625, 0.875, 0.125]
    """
    t_plus, n = np.broadcast_arrays(np.asarray(t_plus, dtype=np.float64), np.asarray(n, dtype=np.intp))
    out = np.full(t_plus.shape, np.nan)
    for k in np.unique(n):
        rows = n == k
        if k == 0:
            continue
        if k <= EXACT_MAX:
            out[rows] = _two_sided_table(int(k))[t_plus[rows].astype(np.intp)]
            continue
        from scipy.stats import norm  # on first use: a run's parent imports this module but never calls this

        mean, se = k * (k + 1) / 4, math.sqrt(k * (k + 1) * (2 * k + 1) / 24)
        z = (t_plus[rows] - mean) / se  # scipy's default: no continuity correction
        out[rows] = np.minimum(1.0, 2 * np.minimum(norm.cdf(z), norm.sf(z)))
    return out


def _iac_p(q: np.ndarray, q_hat: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Wilcoxon p of ``q (B, L, N)`` vs ``q_hat (B, L, I, K, N)`` on the kept images ``kept (I, K, N)``, for
    continuous scores (no zero or tied differences): ``(B, L, I, K)``."""
    d = q[:, :, None, None, :] - q_hat
    mag = np.where(kept, np.abs(d), np.inf)  # dropped images rank last
    ranks = np.argsort(np.argsort(mag, axis=-1), axis=-1) + 1.0
    t_plus = np.where(kept & (d > 0), ranks, 0.0).sum(axis=-1)
    return signed_rank_p(t_plus, kept.sum(axis=-1))


def _share(hits: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Mean of ``hits (B, L, I, K, N)`` over methods and kept images: ``(B, I, K)``, NaN where none is kept."""
    count = kept.sum(axis=-1) * hits.shape[1]
    total = (hits & kept).sum(axis=(1, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def criteria_batch(
    q: np.ndarray,
    q_nr: np.ndarray,
    q_ar: np.ndarray,
    kept_nr: np.ndarray,
    kept_ar: np.ndarray,
    *,
    higher_is_better: bool = True,
) -> np.ndarray:
    """``meta_consistency``'s four criteria for a batch of B metrics with continuous scores (no ties), vectorised.

    Args:
        q: float ``(B, L, N)`` unperturbed scores.
        q_nr, q_ar: float ``(B, L, I, K, N)`` scores under the minor / disruptive perturbations.
        kept_nr, kept_ar: bool ``(I, K, N)``, the images each criterion uses.
        higher_is_better: the metric's direction (what "worse" means in IEC_AR).

    Returns:
        float64 ``(B, 4)``: IAC_NR, IAC_AR, IEC_NR, IEC_AR (NaN where a perturbation kept no image).
    """
    iac_nr = _iac_p(q, q_nr, kept_nr)
    iac_ar = 1 - _iac_p(q, q_ar, kept_ar)
    order = np.argsort(q, axis=1, kind="stable")[:, :, None, None, :]
    same = np.argsort(q_nr, axis=1, kind="stable") == order
    worse = q_ar < q[:, :, None, None, :] if higher_is_better else q_ar > q[:, :, None, None, :]
    iec_nr, iec_ar = _share(same, kept_nr), _share(worse, kept_ar)
    # per iteration, as MetaQuantus: IAC over (methods, perturbations), IEC over perturbations; then over iterations
    return np.stack(
        [
            iac_nr.mean(axis=(1, 3)).mean(1),
            iac_ar.mean(axis=(1, 3)).mean(1),
            iec_nr.mean(2).mean(1),
            iec_ar.mean(2).mean(1),
        ],
        axis=1,
    )


def noise_criteria(
    tests: Mapping[str, tuple[np.ndarray, np.ndarray]],
    n_methods: int,
    *,
    draws: int = NULL_DRAWS,
    seed: int = 0,
) -> np.ndarray:
    """The criteria of ``draws`` noise metrics in a given setting, averaged over the tests as ``reliability`` does.

    Args:
        tests: ``{test name: (kept_nr, kept_ar)}``, each bool ``(I, K, N)``: the images each perturbation of the
            actual run kept.
        n_methods: L, the number of explanation methods.
        draws: B, noise metrics simulated.
        seed: seed of ``numpy.random.default_rng`` drawing their scores.

    Returns:
        float64 ``(B, 4)``: IAC_NR, IAC_AR, IEC_NR, IEC_AR of each noise metric, each the mean over the tests.
    """
    rng = np.random.default_rng(seed)
    per_test = []
    for kept_nr, kept_ar in tests.values():
        kept_nr, kept_ar = np.asarray(kept_nr, dtype=bool), np.asarray(kept_ar, dtype=bool)
        shape = (draws, n_methods, *kept_nr.shape)
        q = rng.standard_normal((draws, n_methods, kept_nr.shape[-1]))
        per_test.append(criteria_batch(q, rng.standard_normal(shape), rng.standard_normal(shape), kept_nr, kept_ar))
    return np.mean(per_test, axis=0)


@dataclass(frozen=True)
class ReliabilityVerdict:
    """Whether a metric is reliable: ``status`` "reliable" (both criteria beyond the noise null), "not reliable", or
    "not assessed" (not measured, or its criteria are undefined: ``reason`` says which). ``noise_resilience`` and
    ``adversary_reactivity``: the metric's criteria; ``thresholds``: the noise null's upper ``1 - alpha`` quantiles
    they must exceed; ``p_values``: their Monte Carlo p-values against the null (B draws); NaN when not assessed."""

    metric: str
    status: Status
    noise_resilience: float = math.nan
    adversary_reactivity: float = math.nan
    thresholds: tuple[float, float] = (math.nan, math.nan)
    p_values: tuple[float, float] = (math.nan, math.nan)
    null_draws: int = 0
    alpha: float = ALPHA
    reason: str = ""

    @property
    def reliable(self) -> bool:
        """True only for "reliable": a metric not assessed is never counted as reliable."""
        return self.status == "reliable"


def not_assessed(metric: str, reason: str) -> ReliabilityVerdict:
    """The verdict of a metric whose reliability was not measured, with the reason."""
    return ReliabilityVerdict(metric, "not assessed", reason=reason)


def kept_counts(result: ReliabilityResult) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """How many images each perturbation of ``result`` kept: ``{test: (nr, ar)}``, int64 ``(I, K)`` each."""
    tests = (("model", result.model_test), ("input", result.input_test))
    return {name: (t.kept_nr.sum(-1).numpy(), t.kept_ar.sum(-1).numpy()) for name, t in tests if t is not None}


def _masks(counts: np.ndarray, n_images: int) -> np.ndarray:
    """bool ``(I, K, N)`` keeping the first ``counts[i, k]`` images: a noise metric's criteria depend on which
    images were kept only through how many."""
    return np.arange(n_images) < np.asarray(counts)[..., None]


@lru_cache(maxsize=64)
def _cached_null(key: tuple, n_methods: int, n_images: int, draws: int, seed: int) -> np.ndarray:
    """``noise_criteria`` for kept counts given as ``((test, (I, K), nr counts, ar counts), ...)`` (flattened);
    cached, since every metric of a run (and every reread of a stored run) shares its counts."""
    masks = {
        name: (_masks(np.reshape(nr, shape), n_images), _masks(np.reshape(ar, shape), n_images))
        for name, shape, nr, ar in key
    }
    null = noise_criteria(masks, n_methods, draws=draws, seed=seed)
    null.setflags(write=False)
    return null


def reliability_verdict(
    metric: str,
    result: ReliabilityResult,
    *,
    alpha: float = ALPHA,
    draws: int = NULL_DRAWS,
    seed: int = 0,
) -> ReliabilityVerdict:
    """Reliable when noise resilience and adversary reactivity both beat a noise metric's, in the same setting:
    ``verdict_from_counts`` with ``result``'s criteria, kept-image counts, methods and images.

    Args:
        metric: the metric's name.
        result: its ``ReliabilityResult`` (``metrics.reliability.reliability_of``).
        alpha, draws, seed: as ``verdict_from_counts``.

    Returns:
        ``ReliabilityVerdict``.

    Raises:
        ValueError: a bad alpha or draws.
    """
    test = result.model_test if result.model_test is not None else result.input_test
    criteria = (result.iac_nr, result.iac_ar, result.iec_nr, result.iec_ar)
    n_images = int(test.scores.shape[1]) if test is not None else 0
    return verdict_from_counts(
        metric, criteria, kept_counts(result), len(result.methods), n_images, alpha=alpha, draws=draws, seed=seed
    )


def verdict_from_counts(
    metric: str,
    criteria: tuple[float, float, float, float],
    counts: Mapping[str, tuple[np.ndarray, np.ndarray]],
    n_methods: int,
    n_images: int,
    *,
    alpha: float = ALPHA,
    draws: int = NULL_DRAWS,
    seed: int = 0,
) -> ReliabilityVerdict:
    """Reliable when noise resilience and adversary reactivity both beat a noise metric's, in the same setting.

    ``NR = (IAC_NR + IEC_NR) / 2`` and ``AR = (IAC_AR + IEC_AR) / 2`` (means over the tests) are each compared with
    the same quantity of ``draws`` noise metrics (``noise_criteria`` with these kept-image counts, methods,
    iterations and perturbations): ``p = (1 + #{null >= observed}) / (1 + draws)``; reliable when both p are
    <= ``alpha``, equivalently when each criterion exceeds the null's ``ceil((1 - alpha)(draws + 1))``-th smallest
    value (``thresholds``). A noise metric therefore passes in at most ``alpha`` of replications; a metric that
    ignores its input (NR 1, AR 0) never does. Undefined criteria (a perturbation that kept no image: NaN) make the
    verdict "not assessed". Deterministic given ``seed``, so the parent process can recompute a worker's verdict
    from the criteria and counts it sent.

    Args:
        metric: the metric's name.
        criteria: its ``(IAC_NR, IAC_AR, IEC_NR, IEC_AR)``, each the mean over the tests.
        counts: ``{test: (nr, ar)}``, int ``(I, K)`` each: images kept by each minor / disruptive perturbation.
        n_methods: L, explanation methods.
        n_images: N, images per perturbation.
        alpha: level of each of the two tests.
        draws: noise metrics simulated (B).
        seed: seed of the simulation.

    Returns:
        ``ReliabilityVerdict``.

    Raises:
        ValueError: a bad alpha, draws, n_methods, or counts outside [0, n_images] or of different shapes.

    Example:
        >>> counts = {"model": (np.full((2, 5), 16), np.full((2, 5), 9))}
        >>> v = verdict_from_counts("sparseness", (0.5, 0.9, 0.95, 0.8), counts, 2, 16)
        >>> v.status, round(v.noise_resilience, 3), v.p_values
        ('reliable', 0.725, (0.001, 0.001))
    """
    if not (isinstance(alpha, float | int) and 0 < alpha < 1):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be a positive integer, got {draws!r}")
    if isinstance(n_methods, bool) or not isinstance(n_methods, int) or n_methods < 1:
        raise ValueError(f"n_methods must be a positive integer, got {n_methods!r}")
    key = []
    for name, pair in counts.items():
        nr_counts, ar_counts = (np.asarray(c).astype(np.int64) for c in pair)
        if nr_counts.ndim != 2 or nr_counts.shape != ar_counts.shape:
            raise ValueError(
                f"counts of test {name!r} must be two (I, K) arrays, got {nr_counts.shape}, {ar_counts.shape}"
            )
        if min(nr_counts.min(), ar_counts.min()) < 0 or max(nr_counts.max(), ar_counts.max()) > n_images:
            raise ValueError(f"counts of test {name!r} must lie in [0, {n_images}]")
        key.append((name, nr_counts.shape, tuple(nr_counts.ravel().tolist()), tuple(ar_counts.ravel().tolist())))
    iac_nr, iac_ar, iec_nr, iec_ar = (float(c) for c in criteria)
    nr, ar = (iac_nr + iec_nr) / 2, (iac_ar + iec_ar) / 2
    if not key or not (math.isfinite(nr) and math.isfinite(ar)):
        reason = "a perturbation kept no image, so a criterion is undefined (NaN)" if key else "no test was run"
        return ReliabilityVerdict(metric, "not assessed", nr, ar, null_draws=draws, alpha=alpha, reason=reason)
    null = _cached_null(tuple(key), n_methods, n_images, draws, seed)
    status, thresholds, p_values = compare_with_noise(nr, ar, null, alpha)
    reason = "" if status == "reliable" else _why(nr, ar, thresholds, alpha)
    return ReliabilityVerdict(metric, status, nr, ar, thresholds, p_values, draws, alpha, reason)


def compare_with_noise(
    nr: float, ar: float, null: np.ndarray, alpha: float = ALPHA
) -> tuple[Status, tuple[float, float], tuple[float, float]]:
    """The decision of ``reliability_verdict`` from the criteria and a simulated null.

    Args:
        nr, ar: the metric's noise resilience and adversary reactivity (finite).
        null: float ``(B, 4)``, ``noise_criteria``'s IAC_NR, IAC_AR, IEC_NR, IEC_AR of B noise metrics.
        alpha: level of each test.

    Returns:
        ``(status, thresholds, p_values)``: "reliable" or "not reliable"; the null's
        ``ceil((1 - alpha)(B + 1))``-th smallest NR and AR; the Monte Carlo p-values ``(1 + #{null >= x}) / (1 + B)``.

    Example:
        >>> null = np.tile(np.linspace(0.3, 0.7, 19)[:, None], (1, 4))  # 19 noise metrics
        >>> compare_with_noise(0.75, 0.69, null)
        ('not reliable', (0.7, 0.7), (0.05, 0.1))
    """
    null_nr, null_ar = (null[:, 0] + null[:, 2]) / 2, (null[:, 1] + null[:, 3]) / 2
    draws = null.shape[0]
    k = math.ceil((1 - alpha) * (draws + 1))
    thresholds = tuple(float(np.sort(v)[k - 1]) if k <= draws else math.inf for v in (null_nr, null_ar))
    p_values = tuple((1 + int(np.count_nonzero(v >= x))) / (1 + draws) for v, x in ((null_nr, nr), (null_ar, ar)))
    status: Status = "reliable" if max(p_values) <= alpha else "not reliable"
    return status, thresholds, p_values


def _why(nr: float, ar: float, thresholds: tuple[float, float], alpha: float) -> str:
    short = [
        f"{name} {value:.3f} <= {bar:.3f}"
        for name, value, bar in (("noise resilience", nr, thresholds[0]), ("adversary reactivity", ar, thresholds[1]))
        if not value > bar
    ]
    return "; ".join(short) + f" (the upper {1 - alpha:.0%} quantile of a noise metric's)" if short else ""


__all__ = [
    "ALPHA",
    "NULL_DRAWS",
    "ReliabilityVerdict",
    "compare_with_noise",
    "criteria_batch",
    "kept_counts",
    "noise_criteria",
    "not_assessed",
    "reliability_verdict",
    "signed_rank_p",
    "verdict_from_counts",
]
