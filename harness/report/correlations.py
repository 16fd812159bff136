"""Across a board's included recipes: Spearman's rank correlation between robust accuracy and each headline score,
one point per training recipe (its seeds' mean), with an exact permutation p-value over the recipes
(``metrics.stats.recipe_correlation``; Monte Carlo beyond 8 recipes), Holm-adjusted over the board's correlations.

Checkpoints of one recipe share its effect on both axes, so treating them as independent points rejects far too
often under a null where recipe effects exist but are unrelated to robustness; the recipe is the exchangeable unit.
Each model's score is its mean over the values of the board's basis (harness.report.values: normalised between its
floor and ceiling, on the images every included model classifies correctly)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from harness.report.comparisons import Gate, gate_verdict
from harness.report.controls import CONTROL_METHODS
from harness.report.entries import Entry
from harness.report.recipes import Recipe
from harness.report.reliability import RELIABILITY_METHOD
from harness.report.scores import Pair
from harness.report.values import PRIMARY, Basis, scored_metric, select
from harness.report.verdicts import ALPHA, verdict
from metrics.bounds import BOUNDS
from metrics.registry import (
    FEATUREVIS_METHOD,
    FEATUREVIS_NOOP_METHOD,
    HEADLINE,
    HEADLINE_METRICS,
    METRICS,
    output_variant,
)
from metrics.stats import holm
from metrics.stats.units import recipe_correlation

MIN_UNITS = 5  # with fewer recipes an exact two-sided rank test cannot reject at 5% (2 / 4! = 0.083)


@dataclass(frozen=True)
class Correlation:
    """Spearman correlation across the board's recipes between robust accuracy and one score (``metric``: its
    headline name)."""

    method: str
    metric: str
    n_units: int
    rho: float
    p_value: float
    p_adjusted: float
    verdict: str
    n_models: int = 0
    exact: bool = True
    smallest_p: float = math.nan
    normalised: bool = False
    n_examples: int = 0
    note: str = ""


def scored_pairs(entries: list[Entry]) -> list[Pair]:
    """The (method, headline metric) pairs correlated: every method the entries have (controls, bounds and
    reliability aside) with each headline attribution metric, then the headline feature-visualisation scores."""
    skip = (*CONTROL_METHODS, *BOUNDS, RELIABILITY_METHOD, FEATUREVIS_NOOP_METHOD)
    methods = list(dict.fromkeys(m for e in entries for m, _ in e.scores if m not in skip))
    pairs = [(m, name) for m in methods if m != FEATUREVIS_METHOD for name in HEADLINE_METRICS]
    return pairs + [(method, name) for method, name in HEADLINE if method == FEATUREVIS_METHOD and method in methods]


def correlation(recipes: list[Recipe], pair: Pair, gate: Gate, basis: Basis = PRIMARY) -> Correlation | None:
    """One correlation over the included ``recipes`` (None when no model has the score); NaN with fewer than 3
    recipes or no variation."""
    method, name = pair
    entries = [e for r in recipes for e in r.entries]
    stored = scored_metric(entries, name, basis)
    if stored is None:
        return None
    have = [e for e in entries if (method, stored) in e.scores and e.scores[(method, stored)].mean is not None]
    if not have:
        return None
    note = "" if len(have) == len(entries) else f"{len(entries) - len(have)} included model(s) lack this score"
    base = Correlation(method, name, 0, math.nan, math.nan, math.nan, "", n_models=len(have), note=note)
    if not gate(method, stored):
        return replace(base, verdict=gate_verdict(gate, method, stored))
    if all(e.scores[(method, stored)].n <= 1 for e in have):  # set-level scores: the stored value
        scores, normalised, n_examples = [e.scores[(method, stored)].mean for e in have], False, 1
    else:
        selection = select(have, (method, name), basis)
        if selection is None:
            return replace(base, verdict="n/a (the models share fewer than 2 scored examples)")
        scores, normalised, n_examples = list(selection.means), selection.normalised, selection.matrix.shape[1]
        note = "; ".join(p for p in (note, selection.note) if p)
    labels = [_recipe_of(recipes, e) for e in have]
    r = recipe_correlation([e.robust_acc for e in have], scores, labels)
    found = replace(
        base,
        n_units=r.n_units,
        rho=r.rho,
        p_value=r.p_value,
        exact=r.exact,
        smallest_p=r.smallest_p,
        normalised=normalised,
        n_examples=n_examples,
        note=note,
    )
    return found


def correlations(recipes: list[Recipe], gate: Gate, basis: Basis = PRIMARY) -> list[Correlation]:
    """Every scored pair's correlation over the included recipes, Holm-adjusted over those that could be tested."""
    raw = [
        c
        for pair in scored_pairs([e for r in recipes for e in r.entries])
        if (c := correlation(recipes, pair, gate, basis))
    ]

    tested = [c.p_value if not c.verdict else math.nan for c in raw]
    adjusted = holm(tested) if raw else []
    out = []
    for c, p_adj in zip(raw, adjusted, strict=True):
        if c.verdict:
            out.append(c)
            continue
        out.append(replace(c, p_adjusted=float(p_adj), verdict=_verdict(c, float(p_adj))))
    return out


def _recipe_of(recipes: list[Recipe], entry: Entry) -> str:
    return next(r.label for r in recipes if any(e is entry for e in r.entries))


def _verdict(c: Correlation, p_adjusted: float) -> str:
    if c.n_units < MIN_UNITS:
        return f"inconclusive ({c.n_units} recipe{'s' if c.n_units != 1 else ''}: too few to reject)"
    if math.isnan(c.rho):
        return "inconclusive (no variation)"
    if not p_adjusted < ALPHA:
        return f"inconclusive (adjusted p = {p_adjusted:.2g})"
    higher = True if c.normalised else METRICS.get(output_variant(c.metric, "probability")).higher_is_better
    return verdict(1 if c.rho > 0 else -1, higher)
