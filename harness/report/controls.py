"""Each headline score against its run's controls (random attributions; the input times noise), paired on the same
images: does the method beat the controls its metric is held to (``MetricSpec.controls``)? A score that does not is
marked † and left out of the correlations, comparisons and dose-response (:data:`Informative`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from harness.report.entries import Entry
from harness.report.scores import aligned
from metrics.controls import CONTROLS
from metrics.registry import FEATUREVIS_METHOD, HEADLINE_METRICS, METRICS
from metrics.stats import paired_comparison
from metrics.suite_reliability import METHOD as RELIABILITY_METHOD

CONTROL_METHODS: tuple[str, ...] = CONTROLS
EQUIVALENCE = 0.1  # a score within this share of the controls' gap of a control matches it

Informative = Callable[[str, str, str], bool]  # (model, method, metric) -> the score beats its controls


@dataclass(frozen=True)
class ControlCheck:
    """A method's score minus a control's, paired on the same images: does the method beat the control?"""

    model: str
    method: str
    metric: str
    control: str
    diff: float
    low: float
    high: float
    beats: bool  # better than the control by more than the equivalence margin (paired 95% interval)
    matches: bool  # within the equivalence margin of the control (paired 95% interval)


def control_checks(entries: list[Entry]) -> list[ControlCheck]:
    """Each headline score of each real method against the run's controls, paired on the same images.

    ``beats``: the paired 95% interval of (method − control) lies beyond ``EQUIVALENCE`` times the gap between the
    two controls' means, in the metric's better direction. ``matches``: the interval lies within that margin of 0
    (equivalence: e.g. gradient x input against the input control, whose difference on Fashion-MNIST is 0.3% of
    the mass ratio yet, with 100 paired images, significant).
    """
    out = []
    for e in entries:
        for (method, metric), score in e.scores.items():
            if method in (*CONTROL_METHODS, FEATUREVIS_METHOD, RELIABILITY_METHOD) or metric not in HEADLINE_METRICS:
                continue
            refs = {c: e.scores.get((c, metric)) for c in CONTROL_METHODS}
            means = [r.mean for r in refs.values() if r is not None and r.mean is not None]
            margin = EQUIVALENCE * abs(means[0] - means[1]) if len(means) == 2 else 0.0
            higher = METRICS.get(metric).higher_is_better
            for control, ref in refs.items():
                pair = None if ref is None or score.mean is None or ref.mean is None else aligned(score, ref)
                if pair is None or len(pair[0]) < 2:
                    continue
                r = paired_comparison(*pair)
                better_lo = r.lo if higher else -r.hi  # lower bound of the improvement over the control
                matches = -margin <= r.lo and r.hi <= margin
                out.append(
                    ControlCheck(e.model, method, metric, control, r.diff, r.lo, r.hi, better_lo > margin, matches)
                )
    return out


def beats_controls(checks: Iterable[ControlCheck], model: str, method: str, metric: str) -> bool:
    """Whether ``model``'s ``method`` x ``metric`` score beats every control its metric is held to (True when none
    was scored)."""
    held_to = METRICS.get(metric).controls
    mine = [c for c in checks if (c.model, c.method, c.metric) == (model, method, metric)]
    return all(c.beats for c in mine if c.control in held_to)


def shortfall(check: ControlCheck) -> str:
    """How a score that does not beat a control falls short of it: ``≈`` (matches it), ``worse than`` (the interval
    lies on the worse side of 0) or ``not clearly better than``."""
    if check.matches:
        return "≈"
    worse = check.high < 0 if METRICS.get(check.metric).higher_is_better else check.low > 0
    return "worse than" if worse else "not clearly better than"
