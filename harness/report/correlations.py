"""Across a board's models: Spearman's rank correlation between robust accuracy and each headline score (scores that
do not beat their controls left out), with permutation p-values Holm-adjusted over the board's correlations."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from harness.report.controls import CONTROL_METHODS, Informative
from harness.report.entries import Entry
from harness.report.reliability import RELIABILITY_METHOD
from harness.report.scores import Pair
from harness.report.verdicts import ALPHA, verdict
from metrics.registry import FEATUREVIS_METHOD, HEADLINE, HEADLINE_METRICS, METRICS
from metrics.stats import holm, spearman_permutation_test

MIN_MODELS = 5  # with fewer models an exact two-sided rank test cannot reject at 5%


@dataclass(frozen=True)
class Correlation:
    """Spearman correlation across the board's models between robust accuracy and one score."""

    method: str
    metric: str
    n_models: int
    rho: float
    p_value: float
    p_adjusted: float
    verdict: str


def scored_pairs(entries: list[Entry]) -> list[Pair]:
    """The (method, metric) pairs correlated: every method the entries have (controls and reliability aside) with
    each headline attribution metric, then the headline feature-visualisation scores when they were measured."""
    methods = list(
        dict.fromkeys(m for e in entries for m, _ in e.scores if m not in (*CONTROL_METHODS, RELIABILITY_METHOD))
    )
    pairs = [(m, name) for m in methods if m != FEATUREVIS_METHOD for name in HEADLINE_METRICS]
    return pairs + [(method, name) for method, name in HEADLINE if method == FEATUREVIS_METHOD and method in methods]


def robust_vs_score(entries: list[Entry], pair: Pair, informative: Informative) -> tuple[list[float], list[float]]:
    """Robust accuracy and mean score of every model with an informative score of ``pair`` (two ``(k,)`` lists)."""
    kept = [
        (e.robust_acc, e.scores[pair].mean)
        for e in entries
        if pair in e.scores and e.scores[pair].mean is not None and informative(e.model, *pair)
    ]
    return [x for x, _ in kept], [y for _, y in kept]


def correlations(entries: list[Entry], informative: Informative) -> list[Correlation]:
    """One correlation per scored pair that some model has: permutation p-values (exact up to
    ``metrics.stats.permutation.MAX_EXACT`` models), NaN with fewer than 3 models or no variation; Holm-adjusted
    over the board's correlations."""
    raw = []
    for method, name in scored_pairs(entries):
        x, y = robust_vs_score(entries, (method, name), informative)
        if not x:
            continue
        if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
            raw.append(Correlation(method, name, len(x), math.nan, math.nan, math.nan, ""))
            continue
        rho, p = spearman_permutation_test(x, y, alternative="two-sided")
        raw.append(Correlation(method, name, len(x), rho, p, math.nan, ""))
    adjusted = holm([c.p_value for c in raw]) if raw else []
    return [
        replace(c, p_adjusted=float(p_adj), verdict=_verdict(c.rho, p_adj, c.metric, c.n_models))
        for c, p_adj in zip(raw, adjusted, strict=True)
    ]


def _verdict(rho: float, p_adjusted: float, metric: str, n: int) -> str:
    if n < MIN_MODELS:
        return f"inconclusive (n={n} model{'s' if n != 1 else ''})"
    if math.isnan(rho):
        return "inconclusive (no variation)"
    if not p_adjusted < ALPHA:
        return f"inconclusive (adjusted p = {p_adjusted:.2g})"
    return verdict(1 if rho > 0 else -1, METRICS.get(metric).higher_is_better)
