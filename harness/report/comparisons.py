"""The seed paper's comparison: each adversarially trained recipe minus a standard recipe of its architecture on
every headline score, on the same images (GridPG: on the composite cells both recognise), under the board's declared
rules (harness.report.rules) and on a declared basis of values (harness.report.values).

A recipe verdict needs :data:`~harness.report.rules.MIN_SEEDS` seeds on both sides: the difference is then a
mixed-model t interval and test over seeds and images (``metrics.stats.recipe_difference``; set-level scores such as
FID: Welch's t over seeds). A recipe with fewer seeds is shown with its checkpoints' paired difference over images
(sign-flip test), which says nothing about the recipe's seed-to-seed spread and gets no verdict. p-values of the
recipe verdicts of one basis and baseline are Holm-adjusted together; a score whose method does not beat its bar
(harness.report.controls.gate) gets no verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from harness.report.recipes import Recipe
from harness.report.rules import MIN_SEEDS, baselines
from harness.report.scores import Pair, Score
from harness.report.values import PRIMARY, Basis, scored_metric, select
from harness.report.verdicts import adjusted_verdict, verdict
from metrics.registry import HEADLINE, METRICS
from metrics.stats import holm, paired_comparison, recipe_difference

Gate = Callable[[str, str], bool]  # (method, stored metric) -> it beats its bar on the board: it may get verdicts
NO_BAR = "the method does not beat its model-free bar on this board"
FEW_SEEDS = "checkpoints, not recipes: fewer than {k} seeds on a side, so no recipe verdict"


@dataclass(frozen=True)
class Comparison:
    """An adversarially trained recipe minus a standard one on one score, on one basis.

    ``kind``: "recipes" (>= MIN_SEEDS seeds on both sides: mixed-model t over seeds and images, or Welch's t over
    seeds for set-level scores), "checkpoints" (fewer seeds: paired over images, no verdict), "intervals" (set-level
    scores with fewer seeds: the stored intervals side by side, no verdict). ``informative`` is False when the score
    may not carry a verdict (its method does not beat its bar, or too few seeds).
    """

    model: str  # the adversarially trained recipe's label (its model's name when it has one seed)
    method: str
    metric: str
    diff: float
    low: float
    high: float
    verdict: str
    kind: str = "recipes"
    p_value: float = math.nan
    p_adjusted: float = math.nan
    n: int = 0
    seeds: tuple[int, int] = (1, 1)
    informative: bool = True
    intervals: tuple[tuple[float | None, float | None], tuple[float | None, float | None]] | None = None
    note: str = ""
    baseline: str = ""  # the standard recipe it is compared with
    basis: Basis = PRIMARY
    normalised: bool = False  # the values were placed between each model's floor and ceiling
    matched: bool = True  # the baseline was trained for as many epochs

    @property
    def per_example(self) -> bool:
        return self.kind != "intervals"

    @property
    def higher_is_better(self) -> bool:
        """The direction of ``diff``: normalised scores are higher-is-better whatever the raw metric's direction."""
        return True if self.normalised else METRICS.get(self.metric).higher_is_better


def versus_standard(
    recipes: list[Recipe], gate: Gate, *, basis: Basis = PRIMARY, default_baseline: bool = False
) -> list[Comparison]:
    """Each adversarially trained recipe (of the included ``recipes``) minus its primary standard baseline (the
    epochs-matched one; with ``default_baseline`` the architecture's default standard recipe) on every headline
    score, with verdicts from p-values Holm-adjusted over the recipe verdicts of this call."""
    out = []
    for recipe in (r for r in recipes if r.robust):
        found = baselines(recipes, recipe)
        base = found.default if default_baseline else found.primary
        if base is None:
            continue
        matched = base is found.matched
        out += [c for pair in HEADLINE if (c := compare(recipe, base, pair, gate, basis, matched)) is not None]
    decided = [c.p_value if c.informative and c.kind == "recipes" else math.nan for c in out]
    adjusted = holm(decided) if out else []
    final = []
    for c, p_adj in zip(out, adjusted, strict=True):
        if not (c.informative and c.kind == "recipes"):
            final.append(c)
            continue
        final.append(replace(c, p_adjusted=float(p_adj), verdict=adjusted_verdict(c.diff, p_adj, c.higher_is_better)))
    return final


def gate_verdict(gate: Gate, method: str, metric: str) -> str:
    """The verdict cell of a score its gate keeps from a verdict: "descriptive" for a metric without a null, else
    that the method does not beat its bar (or no-op)."""
    spec = METRICS.get(metric)
    if spec.no_verdict:
        return "descriptive (no null, no verdict)"
    found = getattr(gate, "of", None)
    reason = found((method, metric)).reason if found is not None else ""
    return "no verdict (does not beat its bar" + (f": {reason})" if reason else ")")


def uncompared(recipes: list[Recipe]) -> list[str]:
    """The adversarially trained recipes without a standard recipe of their architecture on the board, with why."""
    return [
        f"{r.name}: no standard recipe of architecture {r.architecture or 'unrecorded'}"
        for r in recipes
        if r.robust and baselines(recipes, r).primary is None
    ]


def compare(
    robust: Recipe, base: Recipe, pair: Pair, gate: Gate, basis: Basis = PRIMARY, matched: bool = True
) -> Comparison | None:
    """One recipe against one baseline on one score (``pair``: a headline name), before the Holm adjustment (None
    when a model lacks it)."""
    models = [*robust.entries, *base.entries]
    stored = scored_metric(models, pair[1], basis)
    if stored is None:
        return None
    scores = [e.scores.get((pair[0], stored)) for e in models]
    if any(s is None or s.mean is None for s in scores):
        return None
    seeds = (len(robust.entries), len(base.entries))
    enough = min(seeds) >= MIN_SEEDS
    ok = gate(pair[0], stored)
    notes = [] if ok or METRICS.get(stored).no_verdict else [NO_BAR]
    if not enough:
        notes.append(FEW_SEEDS.format(k=MIN_SEEDS))
    start = Comparison(
        robust.name,
        *pair,
        math.nan,
        math.nan,
        math.nan,
        "",
        seeds=seeds,
        baseline=base.name,
        informative=ok and enough,
        note="; ".join(notes),
        basis=basis,
        matched=matched,
    )
    present = [s for s in scores if s is not None]
    if all(s.n <= 1 for s in present):  # set-level (FID): one value per run
        return _set_level(start, present[: seeds[0]], present[seeds[0] :])
    selection = select(models, pair, basis)
    if selection is None:
        return replace(
            start,
            verdict="n/a (no examples scored by all)",
            informative=False,
            note="the models share fewer than 2 scored examples",
        )
    note = "; ".join(p for p in (start.note, selection.note) if p)
    start = replace(start, normalised=selection.normalised, note=note)
    a, b = selection.matrix[: seeds[0]], selection.matrix[seeds[0] :]
    if enough:
        r = recipe_difference(a, b)
        text = "" if ok else gate_verdict(gate, pair[0], stored)
        return replace(start, diff=r.diff, low=r.lo, high=r.hi, verdict=text, p_value=r.p_value, n=a.shape[1])
    res = paired_comparison(a.mean(0), b.mean(0))
    return replace(
        start,
        diff=res.diff,
        low=res.lo,
        high=res.hi,
        verdict=f"no recipe verdict ({seeds[0]} vs {seeds[1]} seeds)",
        kind="checkpoints",
        p_value=res.p_value,
        n=a.shape[1],
    )


def _set_level(start: Comparison, mine: list[Score], theirs: list[Score]) -> Comparison:
    """One value per run: Welch's t test over seeds with enough seeds on both sides (a recipe verdict); else each
    recipe's span of its seeds' stored intervals, side by side (no verdict)."""
    if min(start.seeds) >= MIN_SEEDS:
        from scipy.stats import ttest_ind

        a, b = [s.values[0] for s in mine], [s.values[0] for s in theirs]
        test = ttest_ind(a, b, equal_var=False)
        lo, hi = test.confidence_interval(0.95)
        diff = float(np.mean(a) - np.mean(b))
        text = "" if start.informative else "no verdict (does not beat its bar)"
        return replace(start, diff=diff, low=float(lo), high=float(hi), verdict=text, p_value=float(test.pvalue), n=1)
    spans = _span(mine), _span(theirs)
    diff = float(np.mean([s.mean for s in mine]) - np.mean([s.mean for s in theirs]))
    apart = None not in spans and (spans[0][1] < spans[1][0] or spans[0][0] > spans[1][1])
    direction = (1 if diff > 0 else -1) if apart else 0
    shown = verdict(direction, METRICS.get(start.metric).higher_is_better, "intervals overlap")
    intervals = (spans[0] or (None, None), spans[1] or (None, None))
    return replace(start, diff=diff, verdict=f"no recipe verdict ({shown})", kind="intervals", intervals=intervals)


def _span(scores: list[Score]) -> tuple[float, float] | None:
    """From the lowest lower to the highest upper bound of the stored intervals of a recipe's seeds."""
    if any(s.low is None or s.high is None for s in scores):
        return None
    return min(s.low for s in scores), max(s.high for s in scores)
