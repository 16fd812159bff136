"""The bar a method must beat on a metric: the best model-free control on that model, compared per image.

Rule: among the controls scored on the metric for this model (``MetricSpec.bar_controls``, or every control), the
bar is the one with the best mean in the metric's direction; a method passes when its per-image values beat the
bar's on the same images, by a one-sided paired sign-flip test (``metrics.stats.paired_comparison``) at ``alpha``.
Taking the best of several controls by mean makes the test conservative for a method that is itself no better than
a control (tested by simulation). Metrics with ``no_verdict`` (complexity; localisation on the input's own support)
have no bar.

Numpy in, floats out; values aligned by image (the caller aligns the stored ``index`` of each row).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from metrics.controls import CONTROLS
from metrics.registry import METRICS
from metrics.stats import paired_comparison


@dataclass(frozen=True)
class Bar:
    """The bar of a metric on one model: the control's name, its mean and its per-image values ``(N,)``."""

    control: str
    mean: float
    values: np.ndarray


@dataclass(frozen=True)
class BarTest:
    """A method against its bar: ``diff`` = mean improvement over the bar in the metric's direction (> 0 = better)
    with its paired 95% interval, the one-sided p-value, and ``passes`` (p < alpha)."""

    bar: str
    diff: float
    lo: float
    hi: float
    p_value: float
    n_pairs: int
    passes: bool


def control_bar(metric: str, controls: Mapping[str, Sequence[float] | np.ndarray]) -> Bar:
    """The best control on ``metric`` by mean (NaN-tolerant), among ``METRICS[metric].bar_controls`` (or every
    control) present in ``controls`` (name -> per-image values, aligned by image).

    Raises:
        ValueError: the metric has no verdict (``no_verdict``), or none of its bar controls has a finite mean.

    Example:
        >>> bar = control_bar("abpc", {"control_random": [0.0, 0.1], "control_inverse": [0.2, 0.3]})
        >>> bar.control, round(bar.mean, 6)
        ('control_inverse', 0.25)
    """
    spec = METRICS.get(metric)
    if spec.no_verdict:
        raise ValueError(f"{metric} has no bar (no verdict): {spec.no_verdict}")
    allowed = spec.bar_controls or CONTROLS
    means = {}
    for name in allowed:
        if name in controls:
            values = np.asarray(controls[name], dtype=np.float64)
            if values.ndim == 1 and bool(np.isfinite(values).any()):
                means[name] = float(np.nanmean(values))
    if not means:
        raise ValueError(f"no control of {metric} has a value (its bar controls: {', '.join(allowed)})")
    best = (max if spec.higher_is_better else min)(means, key=means.__getitem__)
    return Bar(best, means[best], np.asarray(controls[best], dtype=np.float64))


def beats_bar(
    metric: str,
    method: Sequence[float] | np.ndarray,
    controls: Mapping[str, Sequence[float] | np.ndarray],
    *,
    alpha: float = 0.05,
    seed: int = 0,
) -> BarTest:
    """Does ``method`` (per-image values on ``metric``, aligned with the controls') beat the metric's bar on this
    model? One-sided paired test of the mean improvement over :func:`control_bar`'s control (pairs with a NaN on
    either side are dropped).

    Raises:
        ValueError: as :func:`control_bar`, or bad shapes.
    """
    bar = control_bar(metric, controls)
    m = np.asarray(method, dtype=np.float64)
    if m.shape != bar.values.shape:
        raise ValueError(f"method has {m.shape} values, the bar {bar.control} {bar.values.shape}: align them by image")
    sign = 1.0 if METRICS.get(metric).higher_is_better else -1.0
    r = paired_comparison(sign * m, sign * bar.values, alternative="greater", seed=seed)
    return BarTest(bar.control, r.diff, r.lo, r.hi, r.p_value, r.n_pairs, bool(r.p_value < alpha))
