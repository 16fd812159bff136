"""The perturbation curves of one run, shared by the faithfulness metrics of every method, control and bound.

Settings: pixel features removed (or revealed) in ``CURVE_STEPS`` = 50 steps. Two fills for removed pixels:
"uniform" (U[0,1] noise, one draw per image and run: a black baseline would change nothing on Fashion-MNIST's zero
background) and "road" (ROAD's noisy linear imputation from the kept neighbours, Rong et al. 2022, one noise draw
``z`` per image and run). Every curve is scored both ways from the same forward passes (the target's softmax
probability and its logit) and computed once: a method's curves per method, the method-independent ones (the fill
draws, the random-order curves, the occlusion maps and orders of the bounds) once per run in ``RunInputs.shared``.
The draws come from generators seeded by the run seed and a name, so every method, control, bound and model of a
run sees the same per-image fill and random orders.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

CURVE_STEPS = 50
N_FLOOR_ORDERS = 3  # random orders averaged in a single-curve metric's floor (metrics/bounds.py)
CURVES: dict[str, tuple[str, str]] = {  # name -> (order, mode)
    "morf": ("morf", "deletion"),
    "lerf": ("lerf", "deletion"),
    "random": ("random", "deletion"),
    "insertion": ("morf", "insertion"),
}
SCORES = ("probability", "logit")
FILLS = ("uniform", "road")


def seeded_generator(seed: int, name: str) -> torch.Generator:
    """A CPU generator seeded by the run seed and a name (independent of which metrics run)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))


@dataclass
class RunInputs:
    """What every curve of a run is computed from, whatever the method: the model, the explained images
    ``(N, C, H, W)`` and targets ``(N,)``, the fill settings and ``shared``, the run's method-independent work."""

    model: nn.Module
    x: Tensor
    target: Tensor
    baseline: str | Tensor = "uniform"
    seed: int = 0
    batch_size: int = 256
    shared: dict = field(default_factory=dict)

    def generator(self, name: str) -> torch.Generator:
        return seeded_generator(self.seed, name)


def fill_arguments(run: RunInputs, fill: str) -> dict:
    """Keyword arguments of ``perturbation_curve_scores`` for ``fill`` ("uniform" or "road"): the run's baseline
    images ``(N, C, H, W)`` (U[0,1] drawn from the generator "baseline"; "black"/"mean"/a tensor as given) or its
    ROAD noise z ``(N, C, H, W)`` (standard normal from the generator "road"), drawn once per run."""
    if fill == "road":
        if "road_noise" not in run.shared:
            run.shared["road_noise"] = torch.randn(run.x.shape, generator=run.generator("road")).to(run.x.device)
        return {"fill": "road", "noise": run.shared["road_noise"]}
    if "baseline" not in run.shared:
        from metrics.functional._perturb import resolve_baseline

        run.shared["baseline"] = (
            torch.rand(run.x.shape, generator=run.generator("baseline")).to(run.x.device)
            if isinstance(run.baseline, str) and run.baseline == "uniform"
            else resolve_baseline(run.baseline, run.x, None)
        )
    return {"baseline": run.shared["baseline"]}


def fill_images(run: RunInputs, fill: str) -> Tensor:
    """What a pixel becomes when it alone is removed, ``(N, C, H, W)``: the run's baseline image ("uniform"), or
    ROAD's imputation of that pixel from its 8 neighbours plus the run's noise (``single_pixel_imputation``)."""
    args = fill_arguments(run, fill)
    if fill != "road":
        return args["baseline"]
    from metrics.functional.road import DEFAULT_NOISE_STD, single_pixel_imputation

    return single_pixel_imputation(run.x, noise_std=DEFAULT_NOISE_STD, noise=args["noise"])


def curve_aucs(run: RunInputs, attributions: Tensor, which: str, fill: str) -> tuple[Tensor, Tensor]:
    """Areas under the curve ``which`` (a key of ``CURVES``; "random" orders are not drawn here) of
    ``attributions`` under ``fill``: ``(probability AUC (N,), logit AUC (N,))``, from one set of forward passes."""
    from metrics.functional import curve_auc, perturbation_curve_scores

    order, mode = CURVES[which]
    scores = perturbation_curve_scores(
        run.model,
        run.x,
        attributions,
        run.target,
        order=order,
        mode=mode,
        n_steps=CURVE_STEPS,
        batch_size=run.batch_size,
        **fill_arguments(run, fill),
    )
    n_features = run.x.shape[2] * run.x.shape[3]
    return curve_auc(scores.probability, n_features=n_features), curve_auc(scores.logit, n_features=n_features)


def random_order_map(run: RunInputs, j: int) -> Tensor:
    """The run's ``j``-th random order (j = 0, 1, ...) as a map ``(N, 1, H, W)`` whose most-relevant-first order
    it is: ``-rank``, with ``rank = argsort(u_j)``'s inverse and ``u_j ~ U[0,1)^(N, H*W)`` the j-th draw from the
    generator "random_order" (the j = 0 order is the one ``perturbation_curve(order="random")`` draws first from
    that generator)."""
    from metrics.functional._perturb import feature_ranks

    orders = run.shared.setdefault("random_orders", [])
    if not orders:
        run.shared["random_order_generator"] = run.generator("random_order")
    n, _, h, w = run.x.shape
    generator = run.shared["random_order_generator"]
    while len(orders) <= j:
        ranks = feature_ranks(torch.zeros(n, h * w, device=run.x.device), "random", generator)
        orders.append(-ranks.to(torch.float32).reshape(n, 1, h, w))
    return orders[j]


def random_aucs(run: RunInputs, mode: str, fill: str, j: int = 0) -> tuple[Tensor, Tensor]:
    """``curve_aucs`` of the run's ``j``-th random order in ``mode`` ("deletion" or "insertion"), once per run."""
    key = f"random_auc:{fill}:{mode}:{j}"
    if key not in run.shared:
        which = "morf" if mode == "deletion" else "insertion"
        run.shared[key] = curve_aucs(run, random_order_map(run, j), which, fill)
    return run.shared[key]
