"""The seed paper's comparison: each adversarially trained recipe minus the standard recipe of its architecture on
every headline score, paired on the same images (GridPG: on the composite cells both recognise).

One comparison is a selection (:func:`harness.report.scores.common_matrix`: the per-example values every model of
both recipes has) and a test chosen by the design: one seed each, a paired bootstrap interval and sign-flip test;
seeds on both sides, a mixed-model t interval over seeds and images; set-level scores (FID, one value per run),
Welch's t over seeds, or with a single seed the stored intervals compared. p-values are Holm-adjusted over the
board's comparisons; a comparison in which a model's score does not beat its controls gets no verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from harness.report.controls import Informative
from harness.report.recipes import Match, Recipe, matches
from harness.report.scores import Pair, Score, common_matrix
from harness.report.verdicts import adjusted_verdict, verdict
from metrics.registry import HEADLINE, METRICS
from metrics.stats import holm, paired_comparison, recipe_difference

NOT_INFORMATIVE = "a model's score does not beat its controls"
SEVERAL_BASELINES = "standard training of the same architecture"


@dataclass(frozen=True)
class Comparison:
    """An adversarially trained recipe minus the standard one on one score (paired on the same images).

    ``kind``: "paired" (one seed each: paired bootstrap interval, sign-flip test), "recipes" (seeds x images:
    mixed-model t interval and test), "intervals" (set-level scores such as FID with one seed: stored intervals
    compared, no p-value). ``informative`` is False when a model's score does not beat its controls.
    """

    model: str  # the adversarially trained recipe's label (its model's name when it has one seed)
    method: str
    metric: str
    diff: float
    low: float
    high: float
    verdict: str
    kind: str = "paired"
    p_value: float = math.nan
    p_adjusted: float = math.nan
    n: int = 0
    seeds: tuple[int, int] = (1, 1)
    informative: bool = True
    intervals: tuple[tuple[float | None, float | None], tuple[float | None, float | None]] | None = None
    note: str = ""
    baseline: str = ""  # the standard recipe it is compared with (same architecture)

    @property
    def per_example(self) -> bool:
        return self.kind != "intervals"


def versus_standard(all_recipes: list[Recipe], informative: Informative) -> tuple[str | None, list[Comparison]]:
    """Each adversarially trained recipe minus the standard recipe of the same architecture on every headline score,
    with verdicts from p-values Holm-adjusted over the board's family. A recipe whose architecture has no standard
    recipe, or several (e.g. different epochs), is not compared (:func:`harness.report.recipes.unmatched_recipes`).
    The label returned names the one baseline, or says that each row has its own."""
    matched = matches(all_recipes)
    if not matched:
        return None, []
    out = [c for m in matched for pair in HEADLINE if (c := compare(m, pair, informative)) is not None]
    adjusted = holm([c.p_value if c.informative else math.nan for c in out]) if out else []
    final = []
    for c, p_adj in zip(out, adjusted, strict=True):
        if c.kind == "intervals" or not c.informative:
            final.append(c)
            continue
        text = adjusted_verdict(c.diff, p_adj, METRICS.get(c.metric).higher_is_better)
        final.append(replace(c, p_adjusted=float(p_adj), verdict=text))
    used = {id(m.baseline): m.baseline for m in matched}
    if len(used) == 1:
        (base,) = used.values()
        return base.name, final
    return SEVERAL_BASELINES, final


def compare(match: Match, pair: Pair, informative: Informative) -> Comparison | None:
    """One recipe against its baseline on one score, before the Holm adjustment (None when a model lacks it)."""
    models = [*match.robust.entries, *match.baseline.entries]
    scores = [e.scores.get(pair) for e in models]
    if any(s is None or s.mean is None for s in scores):
        return None
    seeds = (len(match.robust.entries), len(match.baseline.entries))
    ok = all(informative(e.model, *pair) for e in models)
    start = Comparison(
        match.robust.name,
        *pair,
        math.nan,
        math.nan,
        math.nan,
        "",
        seeds=seeds,
        baseline=match.baseline.name,
        informative=ok,
        note="" if ok else NOT_INFORMATIVE,
    )
    present = [s for s in scores if s is not None]
    if all(s.n <= 1 for s in present):  # set-level (FID): one value per run
        return _set_level(start, present[: seeds[0]], present[seeds[0] :])
    positional = METRICS.get(pair[1]).paired_by == "image"
    return _per_example(start, common_matrix(present, positional=positional))


def _set_level(start: Comparison, mine: list[Score], theirs: list[Score]) -> Comparison:
    """One value per run: Welch's t test over seeds with two or more seeds on both sides; else each recipe's span of
    its seeds' stored intervals, apart or not."""
    if len(mine) >= 2 and len(theirs) >= 2:
        from scipy.stats import ttest_ind

        a, b = [s.values[0] for s in mine], [s.values[0] for s in theirs]
        test = ttest_ind(a, b, equal_var=False)
        lo, hi = test.confidence_interval(0.95)
        diff = float(np.mean(a) - np.mean(b))
        return replace(start, diff=diff, low=float(lo), high=float(hi), kind="recipes", p_value=float(test.pvalue), n=1)
    spans = _span(mine), _span(theirs)
    diff = float(np.mean([s.mean for s in mine]) - np.mean([s.mean for s in theirs]))
    apart = None not in spans and (spans[0][1] < spans[1][0] or spans[0][0] > spans[1][1])
    direction = (1 if diff > 0 else -1) if apart else 0
    text = verdict(direction, METRICS.get(start.metric).higher_is_better, "inconclusive (intervals overlap)")
    intervals = (spans[0] or (None, None), spans[1] or (None, None))
    return replace(start, diff=diff, verdict=text, kind="intervals", intervals=intervals)


def _span(scores: list[Score]) -> tuple[float, float] | None:
    """From the lowest lower to the highest upper bound of the stored intervals of a recipe's seeds."""
    if any(s.low is None or s.high is None for s in scores):
        return None
    return min(s.low for s in scores), max(s.high for s in scores)


def _per_example(start: Comparison, matrix: np.ndarray | None) -> Comparison:
    """``matrix``: ``(models, examples)`` values, the robust recipe's seeds first (None: not pairable)."""
    if matrix is None or matrix.shape[1] < 2:
        return replace(
            start,
            verdict="n/a (no examples scored by both)",
            informative=False,
            note="the models were scored on different examples",
        )
    seeds, note = start.seeds, start.note
    a, b = matrix[: seeds[0]], matrix[seeds[0] :]
    if seeds[0] >= 2 and seeds[1] >= 2:
        r = recipe_difference(a, b)
        diff, lo, hi, p, kind = r.diff, r.lo, r.hi, r.p_value, "recipes"
    else:
        res = paired_comparison(a.mean(0), b.mean(0))
        diff, lo, hi, p, kind = res.diff, res.lo, res.hi, res.p_value, "paired"
        if max(seeds) > 1:
            note = (note + "; " if note else "") + "one recipe has a single seed: seed-to-seed spread not included"
    text = "" if start.informative else "not informative (does not beat its controls)"
    return replace(start, diff=diff, low=lo, high=hi, verdict=text, kind=kind, p_value=p, n=matrix.shape[1], note=note)
