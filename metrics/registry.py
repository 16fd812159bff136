"""The metric registry: one record per metric (name, family, compute, direction, range, what it needs).

Each ``compute(ctx)`` is a thin adapter from a :class:`MetricContext` to a function of
``metrics.functional`` and returns per-example values ``(N,)``. It raises :class:`NotApplicable` (with a
reason) when the metric is meaningless for this model or data, never a silent NaN.

Long because it is the single metric table (issue 11): one small adapter and one spec per metric, deliberately in
one file so that every column, unit and direction has one home.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from metrics._registry import Registry


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
    recognised: torch.Tensor | None = None  # (M*4,) bool: the row's cell class is in the model's top 4
    row_ids: tuple[str, ...] = ()  # (M*4,) model-independent identity of each row: "<4 source indices>:<cell>"


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


# Degenerate attribution maps (metrics/functional/degenerate.py) on which a metric is undefined: its value there
# is a convention for 0/0 or the result of tie-breaking, not a property of an explanation. Every metric is undefined
# on all-zero maps (no relevance anywhere: 0/0 ratios, Spearman/Pearson of a constant, Gini of zeros, curves and
# rankings ordered by tie-breaking alone, infidelity and sensitivity reduce to properties of the model) and on
# non-finite ones. Metrics that order or correlate attributions are undefined on constant maps too; localisation,
# sparseness, infidelity and sensitivity are defined there (chance level, Gini 0, a real prediction error).
# The suite drops the values of such images and stores n/a with the reason when no image is left.
UNDEFINED_ON_ZERO: frozenset[str] = frozenset({"zero", "non_finite"})
UNDEFINED_ON_CONSTANT: frozenset[str] = frozenset({"zero", "constant", "non_finite"})

# The control attribution methods (metrics.controls) a headline score must beat to count on the leaderboard.
BOTH_CONTROLS: tuple[str, ...] = ("control_random", "control_input")
# Details every attribution score may store (metrics.suite): degenerate maps, why values were dropped or why the
# score is n/a, and the explained image each value belongs to; a metric's own details are on its spec (``details``).
SCORE_DETAILS: frozenset[str] = frozenset(
    {"degenerate", "dropped_degenerate", "degenerate_rule", "dropped_non_finite", "not_applicable", "index"}
)


@dataclass(frozen=True)
class MetricSpec:
    """One row of the metric table, read by the suite, the leaderboard, the gate and the figures.

    ``stage`` says who computes it: ``attribution`` metrics score one attribution method's maps (``compute``),
    ``featurevis`` scores are computed from a run's feature visualisations (metrics.featurevis.scoring).

    How the leaderboard (harness.report) treats the score: ``controls``, the control methods its score must beat
    (else it is marked † and left out of the comparisons); ``paired_by``, what one per-example value belongs to when
    models are paired: ``"image"`` (a test image, so values stored without keys pair by position) or ``"cell"`` (a
    GridPG composite cell: composites depend on the model, so values stored without cell ids never pair);
    ``fill_variant``, the same score with removed pixels imputed (ROAD) instead of filled with noise, whose verdict
    the board sets beside this one's. ``details``: the detail keys its computation stores beyond
    :data:`SCORE_DETAILS` (the keys the parent accepts from the worker for it).
    """

    name: str
    family: str
    short: str  # column label
    higher_is_better: bool
    value_range: tuple[float, float]
    description: str
    compute: Callable[[MetricContext], torch.Tensor] | None = None
    unit: str = ""
    stage: str = "attribution"
    needs: frozenset[str] = frozenset()
    undefined_on: frozenset[str] = UNDEFINED_ON_ZERO  # degenerate map kinds on which the metric is undefined
    controls: tuple[str, ...] = BOTH_CONTROLS
    paired_by: Literal["image", "cell"] = "image"
    fill_variant: str = ""
    details: frozenset[str] = frozenset()

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    @property
    def headline(self) -> bool:
        return self.name in HEADLINE_METRICS or self.name in FEATUREVIS_HEADLINE


METRICS: Registry[MetricSpec] = Registry("metric")


def metric(
    name: str,
    *,
    family: str,
    short: str,
    higher_is_better: bool,
    value_range: tuple[float, float],
    description: str,
    needs: tuple[str, ...] = (),
    undefined_on: frozenset[str] = UNDEFINED_ON_ZERO,
    unit: str = "",
    controls: tuple[str, ...] = BOTH_CONTROLS,
    paired_by: Literal["image", "cell"] = "image",
    fill_variant: str = "",
    details: tuple[str, ...] = (),
):
    """Register an attribution metric: ``compute(ctx) -> (N,)`` per-example values (fields: :class:`MetricSpec`)."""

    def decorator(fn: Callable[[MetricContext], torch.Tensor]) -> Callable[[MetricContext], torch.Tensor]:
        METRICS.add(
            name,
            MetricSpec(
                name=name,
                family=family,
                short=short,
                higher_is_better=higher_is_better,
                value_range=value_range,
                description=description,
                compute=fn,
                unit=unit,
                needs=frozenset(needs),
                undefined_on=frozenset(undefined_on),
                controls=tuple(controls),
                paired_by=paired_by,
                fill_variant=fill_variant,
                details=frozenset(details),
            ),
        )
        return fn

    return decorator


def attribution_metrics() -> list[str]:
    """Names of the metrics the suite can compute per attribution method (``--metrics all``), sorted."""
    return [name for name, spec in METRICS.items() if spec.stage == "attribution"]


# Perturbation settings shared by the faithfulness metrics: pixel features removed in 50 steps; the score of every
# curve is the softmax probability of the target class. Two fills for removed pixels: "uniform" (U[0,1] noise; a
# black baseline would change nothing on Fashion-MNIST's zero background) and "road" (noisy linear imputation from
# the kept neighbours, Rong et al. 2022), whose filled pixels carry no new signal a model could react to. One
# baseline / imputation-noise draw and one random order per method feed all curves of a fill, so deletion,
# insertion, ABPC and relative deletion are computed from the same perturbed images and each curve once.
CURVE_STEPS = 50
_CURVES = {
    "morf": ("morf", "deletion"),
    "lerf": ("lerf", "deletion"),
    "random": ("random", "deletion"),
    "insertion": ("morf", "insertion"),
}


def _curve_auc(ctx: MetricContext, which: str, fill: str = "uniform") -> torch.Tensor:
    """AUC (fraction of features on the x-axis) of one of the shared curves, computed once per context."""
    from metrics.functional import curve_auc, perturbation_curve

    key = f"curve_auc:{fill}:{which}"
    if key not in ctx.cache:
        order, mode = _CURVES[which]
        generator = ctx.generator("random_order")
        if fill == "road":
            if "road_noise" not in ctx.cache:
                ctx.cache["road_noise"] = torch.randn(ctx.x.shape, generator=ctx.generator("road")).to(ctx.x.device)
            fill_args = {"fill": "road", "noise": ctx.cache["road_noise"]}
        else:
            if "baseline" not in ctx.cache:
                ctx.cache["baseline"] = (
                    torch.rand(ctx.x.shape, generator=ctx.generator("baseline")).to(ctx.x.device)
                    if ctx.baseline == "uniform"
                    else ctx.baseline
                )
            fill_args = {"baseline": ctx.cache["baseline"]}
        curve = perturbation_curve(
            ctx.model,
            ctx.x,
            ctx.attributions,
            ctx.target,
            order=order,
            mode=mode,
            n_steps=CURVE_STEPS,
            generator=generator,
            batch_size=ctx.batch_size,
            **fill_args,
        )
        ctx.cache[key] = curve_auc(curve, n_features=ctx.x.shape[2] * ctx.x.shape[3])
    return ctx.cache[key]


def _register_curves(fill: str, suffix: str, label: str, note: str) -> None:
    """Deletion AUC, insertion AUC, ABPC and relative deletion under one fill (``suffix`` names them)."""
    faithfulness = {"family": "faithfulness", "undefined_on": UNDEFINED_ON_CONSTANT}
    definitions = (
        ("deletion_auc", "Del. AUC", False, (0, 1), "area under the MoRF deletion curve (raw)", ("morf",)),
        ("insertion_auc", "Ins. AUC", True, (0, 1), "area under the MoRF insertion curve (raw)", ("insertion",)),
        (
            "abpc",
            "ABPC",
            True,
            (-1, 1),
            "LeRF minus MoRF deletion area (normalised for the model's own reaction)",
            ("lerf", "morf"),
        ),
        ("deletion_relative", "Del. rel.", True, (-1, 1), "random-order minus MoRF deletion area", ("random", "morf")),
    )
    for name, short, higher, value_range, description, curves in definitions:

        def compute(ctx: MetricContext, curves: tuple[str, ...] = curves) -> torch.Tensor:
            first = _curve_auc(ctx, curves[0], fill)
            return first if len(curves) == 1 else first - _curve_auc(ctx, curves[1], fill)

        metric(
            name + suffix,
            short=short + label,
            higher_is_better=higher,
            value_range=value_range,
            description=f"{description}; {note}",
            fill_variant=f"{name}_road" if fill == "uniform" else "",
            **faithfulness,
        )(compute)


_register_curves("uniform", "", "", "removed pixels filled with U[0,1] noise")
_register_curves("road", "_road", " (ROAD)", "removed pixels imputed from their neighbours (ROAD, Rong et al. 2022)")


@metric(
    "faithfulness_correlation",
    short="Faith. corr.",
    family="faithfulness",
    higher_is_better=True,
    value_range=(-1, 1),
    description="Pearson corr. of subset attribution sums and score drops (Bhatt et al. 2020)",
    undefined_on=UNDEFINED_ON_CONSTANT,
)
def _faithfulness_correlation(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import faithfulness_correlation

    return faithfulness_correlation(
        ctx.model,
        ctx.x,
        ctx.attributions,
        ctx.target,
        baseline=ctx.baseline,
        generator=ctx.generator("faithfulness_correlation"),
        batch_size=ctx.batch_size,
    )


@metric(
    "infidelity",
    short="Infidelity",
    family="faithfulness",
    higher_is_better=False,
    value_range=(0, float("inf")),
    description="Yeh et al. (2019): E[(I . a - (f(x) - f(x - I)))^2] over Gaussian I (sigma 0.2), attributions "
    "at their optimal scale; f = target logit",
)
def _infidelity(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import infidelity_gaussian

    return infidelity_gaussian(
        ctx.model, ctx.x, ctx.attributions, ctx.target, generator=ctx.generator("infidelity"), batch_size=ctx.batch_size
    )


@metric(
    "infidelity_patch",
    short="Infid. (patch)",
    family="faithfulness",
    higher_is_better=False,
    value_range=(0, float("inf")),
    description="Quantus's Infidelity: cumulative 4x4 patches replaced by U[0,1] values, target logit",
)
def _infidelity_patch(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import infidelity

    return infidelity(
        ctx.model,
        ctx.x,
        ctx.attributions,
        ctx.target,
        baseline="uniform",
        generator=ctx.generator("infidelity_patch"),
        batch_size=ctx.batch_size,
    )


def _masks(ctx: MetricContext) -> torch.Tensor:
    if ctx.masks is None:
        raise NotApplicable("no object masks for this data set")
    return ctx.masks


@metric(
    "relevance_mass_ratio",
    short="Mass ratio",
    family="localisation",
    higher_is_better=True,
    value_range=(0, float("inf")),
    description="attribution mass on the object / the object's share of the image (chance 1)",
    needs=("mask",),
)
def _relevance_mass_ratio(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import relevance_mass_ratio

    return relevance_mass_ratio(ctx.attributions, _masks(ctx))


@metric(
    "relevance_rank_accuracy",
    short="Rank acc.",
    family="localisation",
    higher_is_better=True,
    value_range=(0, 1),
    description="share of the top-|mask| attributed pixels inside the object mask",
    needs=("mask",),
)
def _relevance_rank_accuracy(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import relevance_rank_accuracy

    return relevance_rank_accuracy(ctx.attributions, _masks(ctx))


@metric(
    "pointing_game",
    short="Pointing",
    family="localisation",
    higher_is_better=True,
    value_range=(0, 1),
    description="1 if the maximal attribution lies on the object",
    needs=("mask",),
)
def _pointing_game(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import pointing_game

    return pointing_game(ctx.attributions, _masks(ctx))


@metric(
    "gridpg",
    short="GridPG",
    family="localisation",
    higher_is_better=True,
    value_range=(0, 1),
    description="Grid Pointing Game: positive attribution in the target cell / all positive (chance 0.25)",
    needs=("grid",),
    paired_by="cell",
    details=("recognition", "chance", "native", "composites", "degenerate_grid", "rows"),
)
def _gridpg(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import grid_pointing_game

    grid = ctx.grid
    if grid is None or grid.attributions is None:
        raise NotApplicable("no composites could be built (fewer than 4 classes correctly classified)")
    return grid_pointing_game(grid.attributions, grid.cell, grid=(2, 2))


@metric(
    "randomisation",
    short="Random. ρ",
    family="sanity",
    higher_is_better=False,
    value_range=(-1, 1),
    description="Spearman corr. of attributions before/after cascading top-down parameter randomisation "
    "(mean over layers; Adebayo et al. 2018)",
    needs=("explain",),
    undefined_on=UNDEFINED_ON_CONSTANT,
    controls=("control_input",),  # independent noise draws are uncorrelated: random attributions pass by construction
    details=("randomisation_per_layer",),
)
def _randomisation(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import model_parameter_randomisation

    n = min(ctx.n_sanity, len(ctx.x))
    per_layer = model_parameter_randomisation(
        ctx.model, ctx.x[:n], ctx.target[:n], ctx.explain, generator=ctx.generator("randomisation")
    )
    ctx.details["randomisation_per_layer"] = per_layer.mean(0).tolist()
    return per_layer.mean(1)


@metric(
    "randomisation_efficient",
    short="eMPRT",
    family="sanity",
    higher_is_better=True,
    value_range=(-1, float("inf")),
    description="relative rise of the explanation's entropy when every layer is re-initialised (EfficientMPRT, "
    "Hedstroem et al. 2023)",
    needs=("explain",),
    undefined_on=UNDEFINED_ON_CONSTANT,
    controls=("control_input",),  # a randomisation test, held to the input control only (as randomisation)
)
def _randomisation_efficient(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import efficient_model_parameter_randomisation

    n = min(ctx.n_sanity, len(ctx.x))
    return efficient_model_parameter_randomisation(
        ctx.model,
        ctx.x[:n],
        ctx.target[:n],
        ctx.explain,
        attributions=ctx.attributions[:n],
        generator=ctx.generator("randomisation_efficient"),
        batch_size=ctx.batch_size,
    )


@metric(
    "max_sensitivity",
    short="Max-sens.",
    family="robustness",
    higher_is_better=False,
    value_range=(0, float("inf")),
    description="largest relative change of the explanation under small input noise (Yeh et al. 2019)",
    needs=("explain",),
)
def _max_sensitivity(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import max_sensitivity

    n = min(ctx.n_sanity, len(ctx.x))
    return max_sensitivity(
        ctx.model, ctx.x[:n], ctx.target[:n], ctx.explain, generator=ctx.generator("max_sensitivity")
    )


@metric(
    "sparseness",
    short="Gini",
    family="complexity",
    higher_is_better=True,
    value_range=(0, 1),
    description="Gini index of |attributions| (Chalasani et al. 2020)",
)
def _sparseness(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import sparseness

    return sparseness(ctx.attributions)


# Feature-visualisation scores: computed from a run's inversions and generations (metrics.featurevis.scoring), stored
# under the method name FEATUREVIS_METHOD like every other score; the same scores of the unmoved seeds (the no-op
# control, metrics.featurevis.noop) under FEATUREVIS_NOOP_METHOD, like the attribution controls.
FEATUREVIS_METHOD = "featurevis"
FEATUREVIS_NOOP_METHOD = "featurevis_noop"
_FEATUREVIS = (
    MetricSpec("inversion_ssim", "inversion", "Inv. SSIM", True, (-1, 1), "SSIM between inversion and target image"),
    MetricSpec(
        "inversion_psnr",
        "inversion",
        "Inv. PSNR",
        True,
        (0, float("inf")),
        "PSNR between inversion and target",
        unit="dB",
    ),
    MetricSpec(
        "inversion_distance",
        "inversion",
        "Inv. dist.",
        False,
        (0, float("inf")),
        "distance between inversion and target in the reference encoder's feature space",
    ),
    MetricSpec(
        "inversion_loss",
        "inversion",
        "Inv. loss",
        False,
        (0, float("inf")),
        "the model's own relative representation distance after inversion",
    ),
    MetricSpec(
        "generation_fid",
        "generation",
        "FID",
        False,
        (0, float("inf")),
        "FID of class-specific generations against real test images (reference features)",
    ),
    MetricSpec(
        "generation_judge_accuracy",
        "generation",
        "Judge acc.",
        True,
        (0, 1),
        "share of generations the reference classifier assigns to their intended class",
    ),
)
for _spec in _FEATUREVIS:
    METRICS.add(_spec.name, MetricSpec(**{**_spec.__dict__, "stage": "featurevis"}))
FEATUREVIS_SCORES: tuple[str, ...] = tuple(spec.name for spec in _FEATUREVIS)  # in detail-table column order

# Leaderboard headline: these attribution metrics for HEADLINE_METHOD, then these feature-visualisation scores, in
# this column order (normalised faithfulness, localisation, sanity, complexity; inversion and generation).
HEADLINE_METHOD = "expected_gradients"
HEADLINE_METRICS: tuple[str, ...] = (
    "abpc",
    "abpc_road",
    "deletion_relative",
    "deletion_relative_road",
    "gridpg",
    "relevance_mass_ratio",
    "randomisation",
    "sparseness",
)
FEATUREVIS_HEADLINE: tuple[str, ...] = (
    "inversion_ssim",
    "inversion_distance",
    "generation_fid",
    "generation_judge_accuracy",
)
HEADLINE: tuple[tuple[str, str], ...] = (
    *((HEADLINE_METHOD, name) for name in HEADLINE_METRICS),
    *((FEATUREVIS_METHOD, name) for name in FEATUREVIS_HEADLINE),
)
