"""Each model's own floor and ceiling of every perturbation-curve metric, per image, with the same fill and the same
per-image draws as the methods' curves (metrics/curves.py), stored like controls under the methods ``bound_floor``
and ``bound_ceiling`` and computed once per run and metric (not per method).

- **Floor**: the metric's value for a random order. Deletion and insertion AUC: the mean over ``N_FLOOR_ORDERS`` = 3
  random orders (the run's generator "random_order", the first of which is the random curve of relative deletion).
  ABPC and relative deletion: exactly 0, their expectation under a random order (the reverse of a uniform random
  order is uniform, so a random order's LeRF and MoRF areas have the same distribution; and so have two random
  orders' MoRF areas), used instead of a noisy estimate.
- **Ceiling**: the best value found for this model and image among two model-specific orders: pixels ranked by
  their single-pixel occlusion drop (``metrics.functional.pixel_occlusion``, captum's FeatureAblation) of the
  metric's scored output, once with each fill: the pixel replaced by the run's U[0,1] baseline pixel, and by ROAD's
  imputation of that pixel alone from its 8 neighbours plus the run's noise z (``single_pixel_imputation``); one
  set of forward passes per fill gives the drops of both outputs. Each candidate is scored by the metric's own
  curves under the metric's own fill (most relevant = largest drop first; LeRF = smallest first); per image the
  better candidate in the metric's direction is the ceiling.

  Only orders of the scored output are candidates: for a probability-scored metric the drop of the target's
  log-odds (``z_t - logsumexp_{k != t} z_k``, which ranks pixels as its probability does, without float32's
  saturation at p = 1), for a logit-scored one the drop of its logit. So the ceiling is a function of what is
  scored: a model whose probabilities are mixed with the uniform distribution (``p -> lambda p + (1 - lambda) /
  K``) has the same candidate orders and a ceiling scaled by lambda, which keeps the normalised score unchanged
  (metrics/normalise.py); the target logit's order, a better candidate for some probability-scored metrics, would
  break that (a mixed model's logit is a function of p).

  Images of more than ``MAX_OCCLUSION_FEATURES`` = 1024 pixels (larger than CIFAR's 32x32) are occluded by the
  smallest square patches that divide the image into at most that many (224x224: 7x7 patches, 1024 of them; each
  pixel ranked by its patch's drop, ties by lower index; under ROAD each pixel of a patch takes its single-pixel
  imputation): N (F + 1) passes per fill would be 50,177 per 224x224 image otherwise.

  Not searched: interactions between pixels (a greedy search that re-occludes every remaining pixel after each
  removal needs ``F (F + 1) / 2`` ~ 300,000 forward passes per 28x28 image, 400 times the occlusion's 785: too
  expensive), other patch sizes, and the methods' own orders (the stored row must not depend on which methods
  ran). The stored ceiling is therefore what occlusion finds, not the optimum, and a method can exceed it, more
  often on some models than on others (README, "Model-relative faithfulness"): comparisons raise it per image to
  the best of it and every order scored on the model, methods' and controls' (``metrics.normalise.best_found``), so
  that no model's ceiling is one its own methods beat.

Cost per run (N images of F pixels, default 50 steps): N (F + 1) forward passes of occlusion per fill (both fills,
whichever the requested metrics use), and per fill and scored output 2 candidates x the curves the requested metrics
need (MoRF and LeRF deletion, MoRF insertion: 51 N passes each, plus ROAD's imputation; a curve serves both outputs
when the two outputs' orders coincide, which this does not detect), and ``N_FLOOR_ORDERS - 1`` further random orders
per single-curve metric's mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from metrics.curves import FILLS, N_FLOOR_ORDERS, SCORES, RunInputs, curve_aucs, fill_images, random_aucs
from metrics.registry import METRICS, CurveMetric, MetricSpec, curve_metric_value

BOUND_FLOOR = "bound_floor"
BOUND_CEILING = "bound_ceiling"
BOUNDS: tuple[str, ...] = (BOUND_FLOOR, BOUND_CEILING)
MAX_OCCLUSION_FEATURES = 1024
FLOOR_TEXT = f"random order: mean of {N_FLOOR_ORDERS} (deletion/insertion AUC); exactly 0 (ABPC, relative deletion)"
CEILING_TEXT = "best per image of 2 orders: single-pixel occlusion drop of the scored output, under each fill"


def _curve_spec(name: str) -> tuple[MetricSpec, CurveMetric]:
    spec = METRICS.get(name)
    if spec.curve is None:
        raise ValueError(f"{name} has no floor or ceiling: only the perturbation-curve metrics do")
    return spec, spec.curve


def occlusion_maps(run: RunInputs, fill: str) -> tuple[Tensor, Tensor]:
    """The run's single-pixel occlusion maps under ``fill`` ``(N, 1, H, W)`` each: the drop of the target's
    log-odds (the order of a probability-scored metric) and of its logit, computed once per run."""
    from metrics.functional import pixel_occlusion

    key = f"occlusion:{fill}"
    if key not in run.shared:
        h, w = run.x.shape[2:]
        maps = pixel_occlusion(
            run.model,
            run.x,
            run.target,
            fill=fill_images(run, fill),
            patch_size=occlusion_patch(h, w),
            batch_size=run.batch_size,
        )
        run.shared[key] = (maps.log_odds, maps.logit)
    pair: tuple[Tensor, Tensor] = run.shared[key]
    return pair


def occlusion_patch(h: int, w: int) -> int:
    """The side of the occlusion's square features for an H x W image: the smallest p dividing H and W with at most
    ``MAX_OCCLUSION_FEATURES`` patches (1 up to 32x32 images; 7 at 224x224).

    >>> occlusion_patch(28, 28), occlusion_patch(32, 32), occlusion_patch(224, 224)
    (1, 1, 7)
    """
    for p in range(1, min(h, w) + 1):
        if h % p == 0 and w % p == 0 and (h // p) * (w // p) <= MAX_OCCLUSION_FEATURES:
            return p
    return math.gcd(h, w)


def floor(run: RunInputs, name: str) -> Tensor:
    """The floor of metric ``name`` per image ``(N,)`` (see the module docstring)."""
    _, curve = _curve_spec(name)
    if len(curve.curves) == 2:
        return torch.zeros(run.x.shape[0], dtype=torch.float32, device=run.x.device)
    mode = "insertion" if curve.curves[0] == "insertion" else "deletion"
    index = SCORES.index(curve.score)
    return torch.stack([random_aucs(run, mode, curve.fill, j)[index] for j in range(N_FLOOR_ORDERS)]).mean(dim=0)


def _candidate_auc(run: RunInputs, order_fill: str, score: str, which: str, fill: str) -> Tensor:
    """AUC (of ``score``) of curve ``which`` under ``fill``, pixels ordered by their occlusion drop of ``score``
    under ``order_fill``; the random-order curve is the run's."""
    index = SCORES.index(score)
    if which == "random":
        return random_aucs(run, "deletion", fill)[index]
    key = f"ceiling_auc:{fill}:{order_fill}:{score}:{which}"
    if key not in run.shared:
        run.shared[key] = curve_aucs(run, occlusion_maps(run, order_fill)[index], which, fill)
    auc: Tensor = run.shared[key][index]
    return auc


def ceiling(run: RunInputs, name: str) -> Tensor:
    """The ceiling of metric ``name`` per image ``(N,)`` (see the module docstring)."""
    spec, curve = _curve_spec(name)

    def ordered_by(order_fill: str) -> Callable[[str], Tensor]:
        return lambda which: _candidate_auc(run, order_fill, curve.score, which, curve.fill)

    values = torch.stack(
        [curve_metric_value(ordered_by(o), curve.curves) for o in (curve.fill, *(f for f in FILLS if f != curve.fill))]
    )
    return values.amax(dim=0) if spec.higher_is_better else values.amin(dim=0)


def bound(run: RunInputs, name: str, which: str) -> Tensor:
    """``floor`` (``which="bound_floor"``) or ``ceiling`` (``"bound_ceiling"``) of metric ``name``, ``(N,)``."""
    if which == BOUND_FLOOR:
        return floor(run, name)
    if which == BOUND_CEILING:
        return ceiling(run, name)
    raise ValueError(f"which must be one of {', '.join(BOUNDS)}, got {which!r}")
