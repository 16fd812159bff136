"""The metric registry: one record per metric (name, family, compute, direction, range, what it needs).

Each ``compute(ctx)`` is a thin adapter from a :class:`MetricContext` to a function of
``metrics.functional`` and returns per-example values ``(N,)``. It raises :class:`NotApplicable` (with a
reason) when the metric is meaningless for this model or data, never a silent NaN.

Long because it is the single metric table (issue 11): one small adapter and one spec per metric, deliberately in
one file so that every column, unit and direction has one home.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from metrics.controls import INPUT_CONTROLS
from metrics.curves import SCORES, RunInputs, curve_aucs, random_aucs, seeded_generator
from metrics.registry_base import Registry

if TYPE_CHECKING:
    from metrics.functional.faithfulness import BaselineName

Compute = Callable[["MetricContext"], torch.Tensor]


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
    baseline: BaselineName = "uniform"
    seed: int = 0
    n_sanity: int = 16
    batch_size: int = 256
    details: dict[str, Any] = field(default_factory=dict)  # a metric may add facts worth storing
    cache: dict[str, Any] = field(default_factory=dict)  # work shared between metrics of one method (its curves)
    # method-independent work of the run (fills, random orders, bounds)
    shared: dict[str, Any] = field(default_factory=dict)

    def generator(self, name: str) -> torch.Generator:
        """A CPU generator seeded by the run seed and the metric name (independent of which metrics run)."""
        return seeded_generator(self.seed, name)

    @property
    def inputs(self) -> RunInputs:
        """The run's curve inputs (model, images, targets, fill settings, ``shared``), whatever the method."""
        return RunInputs(self.model, self.x, self.target, self.baseline, self.seed, self.batch_size, self.shared)


# Degenerate maps (metrics/functional/degenerate.py) on which a metric is undefined (its value a convention for 0/0
# or tie-breaking): every metric on all-zero and non-finite maps; metrics that order or correlate attributions on
# constant maps too (localisation, sparseness, infidelity, sensitivity are defined there). The suite drops such
# images' values and stores n/a with the reason when no image is left.
UNDEFINED_ON_ZERO: frozenset[str] = frozenset({"zero", "non_finite"})
UNDEFINED_ON_CONSTANT: frozenset[str] = frozenset({"zero", "constant", "non_finite"})

# Details every attribution score may store (metrics.suite): degenerate maps, why values were dropped or why the
# score is n/a, and the explained image each value belongs to; a metric's own details are on its spec (``details``).
SCORE_DETAILS: frozenset[str] = frozenset(
    {"degenerate", "dropped_degenerate", "degenerate_rule", "dropped_non_finite", "not_applicable", "index"}
)


@dataclass(frozen=True)
class CurveMetric:
    """How a perturbation-curve metric is built: ``AUC(curves[0])`` or ``AUC(curves[0]) - AUC(curves[1])``
    (metrics/curves.py's ``CURVES``) under ``fill``, scored on ``score`` ("probability" or "logit"); ``base`` is
    its name without the ``_logit`` suffix."""

    fill: str
    curves: tuple[str, ...]
    score: str
    base: str


@dataclass(frozen=True)
class MetricSpec:
    """One row of the metric table, read by the suite, the leaderboard, the gate and the figures.

    ``stage`` says who computes it: ``attribution`` metrics score one attribution method's maps (``compute``),
    ``featurevis`` scores are computed from a run's feature visualisations (metrics.featurevis.scoring).

    How the leaderboard (harness.report) treats the score: ``bar_controls``, the controls whose best is the bar its
    score must beat (metrics.bar; every control when empty); ``no_verdict``, why no control is a null for it (no
    verdict); ``paired_by``, what one per-example value belongs to when
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
    compute: Compute | None = None
    unit: str = ""
    stage: str = "attribution"
    needs: frozenset[str] = frozenset()
    undefined_on: frozenset[str] = UNDEFINED_ON_ZERO  # degenerate map kinds on which the metric is undefined
    paired_by: Literal["image", "cell"] = "image"
    fill_variant: str = ""
    details: frozenset[str] = frozenset()
    # perturbation-curve metrics: how the curves make the score; these have a floor and a ceiling per model and
    # image (metrics/bounds.py) and a normalised score between them (metrics/normalise.py)
    curve: CurveMetric | None = None
    # why no control is a null for this metric: it is shown descriptively, with no verdict ("" = verdicts allowed)
    no_verdict: str = ""
    # why the metric is kept out of the headline ("" = no such reason)
    off_headline: str = ""
    # the controls whose best (by mean, per model) is the bar a method must beat; () = every control
    bar_controls: tuple[str, ...] = ()

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    @property
    def normalisable(self) -> bool:
        """Has a floor and a ceiling per model and image (the perturbation-curve metrics)."""
        return self.curve is not None

    @property
    def verdict(self) -> bool:
        """A verdict (beats its bar; better or worse between models) may be given on this metric."""
        return not self.no_verdict

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
    paired_by: Literal["image", "cell"] = "image",
    fill_variant: str = "",
    details: tuple[str, ...] = (),
    curve: CurveMetric | None = None,
    no_verdict: str = "",
    off_headline: str = "",
    bar_controls: tuple[str, ...] = (),
) -> Callable[[Compute], Compute]:
    """Register an attribution metric: ``compute(ctx) -> (N,)`` per-example values (fields: :class:`MetricSpec`)."""

    def decorator(fn: Compute) -> Compute:
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
                paired_by=paired_by,
                fill_variant=fill_variant,
                details=frozenset(details),
                curve=curve,
                no_verdict=no_verdict,
                off_headline=off_headline,
                bar_controls=tuple(bar_controls),
            ),
        )
        return fn

    return decorator


def attribution_metrics() -> list[str]:
    """Names of the metrics the suite can compute per attribution method (``--metrics all``), sorted."""
    return [name for name, spec in METRICS.items() if spec.stage == "attribution"]


# Perturbation curve metrics (settings and sharing: metrics/curves.py). Each is registered per fill ("uniform": U[0,1]
# noise, no suffix; "road": ``_road``) and per scored output (the target's softmax probability, no suffix; its logit,
# ``_logit``), all from the same forward passes: a run stores both outputs, the one its methods explain (the logit by
# default) is the primary (``output_variant``), the other a sensitivity row.
_CURVE_METRICS = (  # base name, short label, higher is better, probability range, description, curves
    ("deletion_auc", "Del. AUC", False, (0, 1), "area under the MoRF deletion curve (raw)", ("morf",)),
    ("insertion_auc", "Ins. AUC", True, (0, 1), "area under the MoRF insertion curve (raw)", ("insertion",)),
    ("abpc", "ABPC", True, (-1, 1), "LeRF minus MoRF deletion area (offset removed, scale kept)", ("lerf", "morf")),
    ("deletion_relative", "Del. rel.", True, (-1, 1), "random-order minus MoRF deletion area", ("random", "morf")),
)


def _method_aucs(ctx: MetricContext, which: str, fill: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(probability, logit) AUCs of one of the method's curves, computed once per context; the random-order curve
    depends on no attribution and is computed once per run."""
    if which == "random":
        return random_aucs(ctx.inputs, "deletion", fill)
    key = f"curve_auc:{fill}:{which}"
    if key not in ctx.cache:
        ctx.cache[key] = curve_aucs(ctx.inputs, ctx.attributions, which, fill)
    aucs: tuple[torch.Tensor, torch.Tensor] = ctx.cache[key]
    return aucs


def curve_metric_value(aucs: Callable[[str], torch.Tensor], curves: tuple[str, ...]) -> torch.Tensor:
    """A curve metric from its curves' AUCs: ``AUC(curves[0])`` or ``AUC(curves[0]) - AUC(curves[1])``, ``(N,)``."""
    first = aucs(curves[0])
    return first if len(curves) == 1 else first - aucs(curves[1])


def _register_curves(fill: str, suffix: str, label: str, note: str) -> None:
    """Deletion AUC, insertion AUC, ABPC and relative deletion under one fill (``suffix`` names them), scored with
    the target's probability and with its logit."""
    for score in SCORES:
        logit = score == "logit"
        for base, short, higher, value_range, description, curves in _CURVE_METRICS:
            index = SCORES.index(score)

            def compute(ctx: MetricContext, curves: tuple[str, ...] = curves, index: int = index) -> torch.Tensor:
                return curve_metric_value(lambda which: _method_aucs(ctx, which, fill)[index], curves)

            name = base + suffix
            fill_label = label.strip(" ()")  # "" or "ROAD"
            metric(
                name + ("_logit" if logit else ""),
                short=f"{short} ({', '.join(filter(None, (fill_label, 'logit')))})" if logit else short + label,
                family="faithfulness",
                higher_is_better=higher,
                value_range=(-float("inf"), float("inf")) if logit else value_range,
                description=f"{description}; {note}; scored on the target's {score}",
                undefined_on=UNDEFINED_ON_CONSTANT,
                curve=CurveMetric(fill=fill, curves=curves, score=score, base=name),
                fill_variant=f"{base}_road" + ("_logit" if logit else "") if fill == "uniform" else "",
            )(compute)


_register_curves("uniform", "", "", "removed pixels filled with U[0,1] noise")
_register_curves("road", "_road", " (ROAD)", "removed pixels imputed from their neighbours (ROAD, Rong et al. 2022)")


def output_variant(name: str, output: str) -> str:
    """The curve metric ``name`` scored on ``output`` ("probability" or "logit"): ``output_variant("abpc",
    "logit") == "abpc_logit"``, ``output_variant("abpc_logit", "probability") == "abpc"``; other metrics are their
    own variant. A run's primary curve scores are ``output_variant(name, <the output its methods explain>)``."""
    if output not in SCORES:
        raise ValueError(f"output must be one of {', '.join(SCORES)}, got {output!r}")
    curve = METRICS.get(name).curve
    if curve is None:
        return name
    return curve.base + ("_logit" if output == "logit" else "")


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


# Localisation against masks that are the input's own support (Fashion-MNIST: pixels > 0.05): the input alone
# (control_input) reaches the attainable maximum, so no control is a null. GridPG (composite cells) is the metric.
_INPUT_SUPPORT = (
    "the object mask is the input's own support (pixels > 0.05), so a map of the input alone (control_input) reaches "
    "the attainable maximum (mass ratio: 99.8% of it on Fashion-MNIST; pointing game: 1): no control is a null and "
    "no method can beat it"
)
_LOCALISATION_OFF_HEADLINE = f"{_INPUT_SUPPORT}; GridPG (composite cells as masks) is the localisation metric"


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
    no_verdict=_INPUT_SUPPORT,
    off_headline=_LOCALISATION_OFF_HEADLINE,
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
    no_verdict=_INPUT_SUPPORT,
    off_headline=_LOCALISATION_OFF_HEADLINE,
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
    no_verdict=_INPUT_SUPPORT,
    off_headline=_LOCALISATION_OFF_HEADLINE,
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
    bar_controls=INPUT_CONTROLS,
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
    bar_controls=INPUT_CONTROLS,
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
    no_verdict="a complexity metric has no chance level: Gini describes how concentrated a map is (a map of the "
    "input alone scores about 0.6 on Fashion-MNIST, where half the pixels are 0), so no control is a null for it",
)
def _sparseness(ctx: MetricContext) -> torch.Tensor:
    from metrics.functional import sparseness

    return sparseness(ctx.attributions)


# Feature-visualisation scores: computed from a run's inversions and generations (metrics.featurevis.scoring), stored
# under the method name FEATUREVIS_METHOD like every other score; the same scores of the unmoved seeds (the no-op
# control, metrics.featurevis.noop) under FEATUREVIS_NOOP_METHOD, like the attribution controls.
FEATUREVIS_METHOD = "featurevis"
FEATUREVIS_NOOP_METHOD = "featurevis_noop"
_INF = float("inf")
_FEATUREVIS = (
    MetricSpec("inversion_ssim", "inversion", "Inv. SSIM", True, (-1, 1), "SSIM between inversion and target image"),
    MetricSpec(
        "inversion_psnr", "inversion", "Inv. PSNR", True, (0, _INF), "PSNR between inversion and target", unit="dB"
    ),
    MetricSpec(
        "inversion_distance",
        "inversion",
        "Inv. dist.",
        False,
        (0, _INF),
        "distance between inversion and target in the reference encoder's feature space",
    ),
    MetricSpec(
        "inversion_loss",
        "inversion",
        "Inv. loss",
        False,
        (0, _INF),
        "the model's representation distance after inversion",
    ),
    MetricSpec(
        "generation_fid",
        "generation",
        "FID",
        False,
        (0, _INF),
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
# this column order (faithfulness, localisation, sanity, complexity; inversion and generation). The mask metrics are
# out (see their ``off_headline``); sparseness is descriptive (``no_verdict``).
HEADLINE_METHOD = "expected_gradients"
HEADLINE_METRICS: tuple[str, ...] = (
    "abpc",
    "abpc_road",
    "deletion_relative",
    "deletion_relative_road",
    "gridpg",
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
