"""Each headline score against its bar, the best model-free control of its metric on the same model and images
(metrics.bar: the input, 1 - x, a blurred x, edges, random maps; randomisation tests are held to the input-structured
ones), and the board's gate: whether a method's score on a metric may carry verdicts at all.

The per-model check (:class:`BarCheck`) is descriptive: a score that does not beat its bar on a model is marked †.
The gate (:func:`gate`) is decided once per (method, metric) for the whole board, from every included recipe (one
unit each: its models' mean improvement over their bars), so that no model is left out of a test because of its own
score: a method passes when the one-sided t test over recipes finds its improvement over the bar positive at
:data:`GATE_ALPHA`. Metrics with no null (``MetricSpec.no_verdict``: complexity; localisation on the input's own
support) never pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from harness.report.entries import Entry
from harness.report.recipes import Recipe
from harness.report.scores import Pair, aligned
from metrics.bar import beats_bar
from metrics.bounds import BOUNDS
from metrics.controls import CONTROLS
from metrics.registry import FEATUREVIS_HEADLINE, FEATUREVIS_METHOD, HEADLINE_METRICS, METRICS, output_variant
from metrics.registry import FEATUREVIS_NOOP_METHOD as FEATUREVIS_NOOP
from metrics.suite_reliability import METHOD as RELIABILITY_METHOD

CONTROL_METHODS: tuple[str, ...] = CONTROLS

GATE_ALPHA = 0.05


@dataclass(frozen=True)
class BarCheck:
    """A method's score against its bar on one model, paired on the same images: ``diff`` is the improvement over
    the bar in the metric's direction (> 0 better) with its 95% interval and one-sided p-value."""

    model: str
    method: str
    metric: str
    bar: str
    bar_mean: float
    diff: float
    low: float
    high: float
    p_value: float
    beats: bool


@dataclass(frozen=True)
class Gate:
    """Whether ``method`` x ``metric`` may carry verdicts on the board: ``passes``, over ``units`` included
    recipes whose mean improvement over the bar is ``mean`` (one-sided t test p-value ``p_value``), or why not."""

    method: str
    metric: str
    passes: bool
    units: int = 0
    mean: float = math.nan
    p_value: float = math.nan
    reason: str = ""


def bar_checks(entries: list[Entry]) -> list[BarCheck]:
    """Each headline attribution score of each real method against its bar on the same model and images."""
    out = []
    for e in entries:
        for (method, metric), score in e.scores.items():
            spec = METRICS.get(metric) if metric in METRICS else None
            if spec is None or not headline(metric) or spec.no_verdict or score.mean is None or not score.values:
                continue
            not_a_method = (*CONTROL_METHODS, *BOUNDS, FEATUREVIS_METHOD, RELIABILITY_METHOD)  # bounds: the model's own
            if method in not_a_method or spec.stage != "attribution":
                continue
            controls = {}
            for control in CONTROL_METHODS:
                ref = e.scores.get((control, metric))
                pair = None if ref is None or ref.mean is None else aligned(score, ref)
                if pair is not None and len(pair[0]) == len(score.values):
                    controls[control] = pair[1]
            try:
                r = beats_bar(metric, np.asarray(score.values, dtype=float), controls)
            except ValueError:  # no usable control of this metric on this run
                continue
            bar_mean = float(np.nanmean(controls[r.bar]))
            out.append(BarCheck(e.model, method, metric, r.bar, bar_mean, r.diff, r.lo, r.hi, r.p_value, r.passes))
    return out


def noop_checks(entries: list[Entry]) -> list[BarCheck]:
    """Each headline feature-visualisation score against its no-op (the unmoved seeds, metrics.featurevis.noop),
    from the comparison stored with the score: ``diff`` is the improvement over the no-op in the better direction."""
    out = []
    for e in entries:
        for (method, metric), score in e.scores.items():
            noop = score.details.get("noop") if method == FEATUREVIS_METHOD else None
            if not isinstance(noop, dict) or not headline(metric):
                continue
            try:
                sign = 1.0 if METRICS.get(metric).higher_is_better else -1.0
                low, high = sorted(sign * float(v) for v in noop["interval"])
                p = noop.get("p_value")
                check = BarCheck(
                    e.model,
                    method,
                    metric,
                    FEATUREVIS_NOOP,
                    float(noop["mean"]),
                    sign * float(noop["diff"]),
                    low,
                    high,
                    math.nan if p is None else float(p),
                    bool(noop["beats"]),
                )
            except (KeyError, TypeError, ValueError):  # a malformed stored comparison: no check
                continue
            out.append(check)
    return out


def beats_bar_on(checks: Iterable[BarCheck], model: str, method: str, metric: str) -> bool:
    """Whether ``model``'s score beats its bar (True when it was not checked: no bar, or not a headline score)."""
    return all(c.beats for c in checks if (c.model, c.method, c.metric) == (model, method, metric))


def gate(recipes: list[Recipe], checks: list[BarCheck], pair: Pair) -> Gate:
    """The board's gate for ``pair`` over the included ``recipes`` (see the module doc); feature-visualisation
    scores are held to their no-op (:func:`noop_checks`). A score with no control (or no-op) stored gets no verdict:
    there is nothing to show that it measures more than chance."""
    method, metric = pair
    spec = METRICS.get(metric)
    if spec.no_verdict:
        return Gate(method, metric, False, reason=spec.no_verdict)
    mine = {(c.model): c.diff for c in checks if (c.method, c.metric) == pair and not math.isnan(c.diff)}
    units = [float(np.mean(d)) for r in recipes if (d := [mine[e.model] for e in r.entries if e.model in mine])]
    if not units:
        bar = "no-op" if method == FEATUREVIS_METHOD else "model-free control"
        return Gate(method, metric, False, reason=f"no {bar} stored for it (runs before it: rescore them)")
    if len(units) < 2:
        return Gate(method, metric, False, len(units), reason="fewer than 2 recipes with a bar check")
    if np.ptp(units) == 0:  # every recipe improves by the same amount: the test is degenerate, the sign is not
        p = 0.0 if units[0] > 0 else 1.0
    else:
        from scipy.stats import ttest_1samp

        p = float(ttest_1samp(units, 0.0, alternative="greater").pvalue)
    passes = p < GATE_ALPHA
    reason = "" if passes else f"improvement over the bar not established across recipes (one-sided p = {p:.2g})"
    return Gate(method, metric, passes, len(units), float(np.mean(units)), p, reason)


def headline(metric: str) -> bool:
    """Whether ``metric`` (or the curve metric it is the other-output variant of) is a headline score."""
    if metric in FEATUREVIS_HEADLINE:
        return True
    return metric in METRICS and output_variant(metric, "probability") in HEADLINE_METRICS


class Gates:
    """The board's gates, computed once per (method, stored metric) on first use."""

    def __init__(self, recipes: list[Recipe], checks: list[BarCheck]) -> None:
        self.recipes, self.checks = recipes, checks
        self.found: dict[Pair, Gate] = {}

    def __call__(self, method: str, metric: str) -> bool:
        return self.of((method, metric)).passes

    def of(self, pair: Pair) -> Gate:
        if pair not in self.found:
            self.found[pair] = gate(self.recipes, self.checks, pair)
        return self.found[pair]
