"""The metric registry: one record per metric (name, family, compute, direction, range, what it needs).

Each ``compute(ctx)`` is a thin adapter from a :class:`MetricContext` to a function of
``metrics.functional`` and returns per-example values ``(N,)``. It raises :class:`NotApplicable` (with a
reason) when the metric is meaningless for this model or data, never a silent NaN.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from harness.registry import Registry


class NotApplicable(Exception):
    """The metric cannot be computed meaningfully here; the message says why."""


@dataclass
class GridInputs:
    """Grid pointing game inputs: composites repeated once per cell, their target and cell index ``(M*4,)``."""

    images: torch.Tensor
    target: torch.Tensor
    cell: torch.Tensor
    recognition: torch.Tensor  # (M,) cell classes in the model's top 4
    chance: float
    native: bool
    attributions: torch.Tensor | None = None


@dataclass
class MetricContext:
    """Everything a metric may use for one model and one attribution method."""

    model: nn.Module
    x: torch.Tensor  # (N, C, H, W) on the device
    target: torch.Tensor  # (N,)
    attributions: torch.Tensor  # (N, C, H, W)
    explain: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
    masks: torch.Tensor | None = None  # (N, 1, H, W) bool object masks
    grid: GridInputs | None = None
    baseline: str = "uniform"
    seed: int = 0
    n_sanity: int = 16
    batch_size: int = 256
    details: dict = field(default_factory=dict)  # a metric may add facts worth storing
    cache: dict = field(default_factory=dict)  # work shared between metrics of one method (curves, baseline)

    def generator(self, name: str) -> torch.Generator:
        """A CPU generator seeded by the run seed and the metric name (independent of which metrics run)."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32(name.encode()))


@dataclass(frozen=True)
class MetricSpec:
    name: str
    family: str
    compute: Callable[[MetricContext], torch.Tensor]
    higher_is_better: bool
    value_range: tuple[float, float]
    description: str
    needs: frozenset[str] = frozenset()


METRICS: Registry[MetricSpec] = Registry("metric")


def metric(name: str, family: str, *, higher_is_better: bool, value_range: tuple[float, float], description: str,
           needs: tuple[str, ...] = ()):  # fmt: skip
    def decorator(fn: Callable[[MetricContext], torch.Tensor]) -> Callable[[MetricContext], torch.Tensor]:
        METRICS.add(name, MetricSpec(name, family, fn, higher_is_better, value_range, description, frozenset(needs)))
        return fn

    return decorator


# Perturbation settings shared by the faithfulness metrics: pixel features removed in 50 steps, replaced by
# U[0,1] noise (a black baseline would change nothing on Fashion-MNIST's zero background). One baseline draw and
# one random order per method feed all four curves, so deletion, insertion, ABPC and relative deletion are
# computed from the same perturbed images and each curve is computed once.
CURVE_STEPS = 50
_CURVES = {"morf": ("morf", "deletion"), "lerf": ("lerf", "deletion"), "random": ("random", "deletion"),
           "insertion": ("morf", "insertion")}  # fmt: skip


def _curve_auc(ctx: MetricContext, which: str) -> torch.Tensor:
    """AUC (fraction of features on the x-axis) of one of the shared curves, computed once per context."""
    from metrics.functional import curve_auc, perturbation_curve

    key = f"curve_auc:{which}"
    if key not in ctx.cache:
        if "baseline" not in ctx.cache:
            ctx.cache["baseline"] = (
                torch.rand(ctx.x.shape, generator=ctx.generator("baseline")).to(ctx.x.device)
                if ctx.baseline == "uniform" else ctx.baseline
            )  # fmt: skip
        order, mode = _CURVES[which]
        curve = perturbation_curve(ctx.model, ctx.x, ctx.attributions, ctx.target, order=order, mode=mode,
                                   baseline=ctx.cache["baseline"], n_steps=CURVE_STEPS,
                                   generator=ctx.generator("random_order"), batch_size=ctx.batch_size)  # fmt: skip
        ctx.cache[key] = curve_auc(curve, n_features=ctx.x.shape[2] * ctx.x.shape[3])
    return ctx.cache[key]


@metric("deletion_auc", "faithfulness", higher_is_better=False, value_range=(0, 1),
        description="area under the MoRF deletion curve of the target probability (raw)")  # fmt: skip
def _deletion_auc(ctx: MetricContext) -> torch.Tensor:
    return _curve_auc(ctx, "morf")


@metric("insertion_auc", "faithfulness", higher_is_better=True, value_range=(0, 1),
        description="area under the MoRF insertion curve, starting from the baseline (raw)")  # fmt: skip
def _insertion_auc(ctx: MetricContext) -> torch.Tensor:
    return _curve_auc(ctx, "insertion")


@metric("abpc", "faithfulness", higher_is_better=True, value_range=(-1, 1),
        description="area between the LeRF and MoRF deletion curves (normalised for the model's own "
                    "reaction)")  # fmt: skip
def _abpc(ctx: MetricContext) -> torch.Tensor:
    return _curve_auc(ctx, "lerf") - _curve_auc(ctx, "morf")


@metric("deletion_relative", "faithfulness", higher_is_better=True, value_range=(-1, 1),
        description="random-order deletion AUC minus MoRF deletion AUC of the same model")  # fmt: skip
def _deletion_relative(ctx: MetricContext) -> torch.Tensor:
    return _curve_auc(ctx, "random") - _curve_auc(ctx, "morf")


@metric("faithfulness_correlation", "faithfulness", higher_is_better=True, value_range=(-1, 1),
        description="Pearson corr. of subset attribution sums and score drops (Bhatt et al. 2020)")  # fmt: skip
def _faithfulness_correlation(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import faithfulness_correlation

    return faithfulness_correlation(ctx.model, ctx.x, ctx.attributions, ctx.target, baseline=ctx.baseline,
                                    generator=ctx.generator("faithfulness_correlation"),
                                    batch_size=ctx.batch_size)  # fmt: skip


@metric("infidelity", "faithfulness", higher_is_better=False, value_range=(0, float("inf")),
        description="expected squared error of attribution-predicted vs actual output change "
                    "(Yeh et al. 2019)")  # fmt: skip
def _infidelity(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import infidelity

    return infidelity(ctx.model, ctx.x, ctx.attributions, ctx.target, generator=ctx.generator("infidelity"),
                      batch_size=ctx.batch_size)  # fmt: skip


def _masks(ctx: MetricContext) -> torch.Tensor:
    if ctx.masks is None:
        raise NotApplicable("no object masks for this data set")
    return ctx.masks


@metric("relevance_mass_ratio", "localisation", higher_is_better=True, value_range=(0, float("inf")),
        description="attribution mass on the object / the object's share of the image (chance 1)",
        needs=("mask",))  # fmt: skip
def _relevance_mass_ratio(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import relevance_mass_ratio

    return relevance_mass_ratio(ctx.attributions, _masks(ctx))


@metric("relevance_rank_accuracy", "localisation", higher_is_better=True, value_range=(0, 1),
        description="share of the top-|mask| attributed pixels inside the object mask", needs=("mask",))  # fmt: skip
def _relevance_rank_accuracy(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import relevance_rank_accuracy

    return relevance_rank_accuracy(ctx.attributions, _masks(ctx))


@metric("pointing_game", "localisation", higher_is_better=True, value_range=(0, 1),
        description="1 if the maximal attribution lies on the object", needs=("mask",))  # fmt: skip
def _pointing_game(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import pointing_game

    return pointing_game(ctx.attributions, _masks(ctx))


@metric("gridpg", "localisation", higher_is_better=True, value_range=(0, 1),
        description="Grid Pointing Game: positive attribution in the target cell / all positive (chance 0.25)",
        needs=("grid",))  # fmt: skip
def _gridpg(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import grid_pointing_game

    grid = ctx.grid
    if grid is None or grid.attributions is None:
        raise NotApplicable("no composites could be built (fewer than 4 classes correctly classified)")
    return grid_pointing_game(grid.attributions, grid.cell, grid=(2, 2))


@metric("randomisation", "sanity", higher_is_better=False, value_range=(-1, 1),
        description="Spearman corr. of attributions before/after cascading top-down parameter randomisation "
                    "(mean over layers; Adebayo et al. 2018)", needs=("explain",))  # fmt: skip
def _randomisation(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import model_parameter_randomisation

    n = min(ctx.n_sanity, len(ctx.x))
    per_layer = model_parameter_randomisation(ctx.model, ctx.x[:n], ctx.target[:n], ctx.explain,
                                              generator=ctx.generator("randomisation"))  # fmt: skip
    ctx.details["randomisation_per_layer"] = per_layer.mean(0).tolist()
    return per_layer.mean(1)


@metric("max_sensitivity", "robustness", higher_is_better=False, value_range=(0, float("inf")),
        description="largest relative change of the explanation under small input noise (Yeh et al. 2019)",
        needs=("explain",))  # fmt: skip
def _max_sensitivity(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import max_sensitivity

    n = min(ctx.n_sanity, len(ctx.x))
    return max_sensitivity(ctx.model, ctx.x[:n], ctx.target[:n], ctx.explain,
                           generator=ctx.generator("max_sensitivity"))  # fmt: skip


@metric("sparseness", "complexity", higher_is_better=True, value_range=(0, 1),
        description="Gini index of |attributions| (Chalasani et al. 2020)")  # fmt: skip
def _sparseness(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import sparseness

    return sparseness(ctx.attributions)
