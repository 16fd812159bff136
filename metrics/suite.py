"""The interpretability suite of a run: attribution methods x metrics on the first ``n_explain`` test images.

Default suite (documented in README): expected_gradients (the seed paper's SHAP) and integrated_gradients
(uniform-noise baselines, as the paper) x deletion/insertion AUC, ABPC, relative deletion, faithfulness
correlation, relevance mass ratio, pointing game, GridPG, randomisation and sparseness.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import torch
from torch import nn
from tqdm.auto import tqdm

from metrics.attribution import METHODS, explain
from metrics.composites import chance_recognition, fit_to_model, make_composites, object_masks, recognition
from metrics.registry import METRICS, GridInputs, MetricContext, NotApplicable

DEFAULT_METHODS: tuple[str, ...] = ("expected_gradients", "integrated_gradients")
DEFAULT_METRICS: tuple[str, ...] = (
    "deletion_auc", "insertion_auc", "abpc", "deletion_relative", "faithfulness_correlation",
    "relevance_mass_ratio", "pointing_game", "gridpg", "randomisation", "sparseness",
)  # fmt: skip
# Cost-reduced integrated gradients for the default suite (the paper: 10 uniform baselines x 50 steps; override
# with --method-option integrated_gradients.n_trials=10 --method-option integrated_gradients.n_steps=50).
DEFAULT_METHOD_OPTIONS: tuple[tuple[str, str, Any], ...] = (
    ("integrated_gradients", "n_trials", 4),
    ("integrated_gradients", "n_steps", 32),
)
RECOGNITION_MARGIN = 0.4  # GridPG needs the lower 95% bound of recognition above chance + this margin
N_RECOGNITION = 200  # composites on which recognition is measured (forward passes only)


@dataclass(frozen=True)
class SuiteConfig:
    """What the suite computes; part of a run's stored configuration."""

    methods: tuple[str, ...] = DEFAULT_METHODS
    metrics: tuple[str, ...] = DEFAULT_METRICS
    n_explain: int = 100
    n_sanity: int = 16
    n_composites: int = 12
    target: Literal["label", "predicted"] = "label"
    baseline: str = "uniform"
    seed: int = 0
    batch_size: int = 256
    n_background: int = 200
    method_options: tuple[tuple[str, str, Any], ...] = DEFAULT_METHOD_OPTIONS

    def options_for(self, method: str) -> dict[str, Any]:
        """Keyword arguments for ``method`` (``method_options`` rows are (method, key, value))."""
        return {key: value for name, key, value in self.method_options if name == method}

    def validate(self) -> None:
        for name in self.methods:
            METHODS.get(name)
        for name, key, _ in self.method_options:
            accepted = inspect.signature(METHODS.get(name).fn).parameters
            if key not in accepted or key in ("model", "x", "target", "background", "seed"):
                options = [p for p in accepted if p not in ("model", "x", "target", "background", "seed")]
                raise ValueError(f"{name} has no option {key!r}; its options: {', '.join(options)}")
        for name in self.metrics:
            METRICS.get(name)
        if self.target not in ("label", "predicted"):
            raise ValueError(f"target must be 'label' or 'predicted', got {self.target!r}")
        if min(self.n_explain, self.n_sanity, self.n_composites, self.batch_size) < 1:
            raise ValueError("n_explain, n_sanity, n_composites and batch_size must be positive")


@dataclass
class MetricScore:
    """Per-example values of one metric for one method, or why it is not applicable."""

    method: str
    metric: str
    values: list[float]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def applicable(self) -> bool:
        return "not_applicable" not in self.details


@dataclass
class Attributions:
    """One method's attributions: on the explained images ``(N, C, H, W)`` and on the GridPG composites."""

    method: str
    main: torch.Tensor
    grid: torch.Tensor | None = None


def iter_suite(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    clean_pred: torch.Tensor,
    *,
    config: SuiteConfig,
    num_classes: int,
    has_object_masks: bool,
    background: torch.Tensor | None,
    device: torch.device,
    progress: bool = True,
    cached: dict[str, Attributions] | None = None,
    done: frozenset[tuple[str, str]] = frozenset(),
) -> Iterator[Attributions | MetricScore]:
    """Score every (method, metric) pair of ``config`` not in ``done`` on the first ``n_explain`` of x.

    Yields each method's :class:`Attributions` when computed (not when taken from ``cached``), then one
    :class:`MetricScore` per pair, so a caller can store work as it completes and resume later.
    """
    config.validate()
    cached = dict(cached or {})
    n = min(config.n_explain, len(x))
    xe = x[:n].to(device)
    target = (y[:n] if config.target == "label" else clean_pred[:n]).to(device)
    masks = object_masks(xe) if has_object_masks else None
    grid, grid_reason = None, None
    if "gridpg" in config.metrics:
        grid, grid_reason = _grid_inputs(model, x, y, clean_pred, config, num_classes, device)
    todo = [(a, b) for a in config.methods for b in config.metrics if (a, b) not in done]
    with tqdm(total=len(todo), desc="interpretability", unit="score", disable=not progress, leave=False) as bar:
        for method in dict.fromkeys(a for a, _ in todo):
            explain_fn = _explainer(method, background, config)
            attributions = cached.get(method)
            if attributions is None:
                bar.set_postfix_str(f"{method}: attributions")
                attributions = Attributions(method, _batched(explain_fn, model, xe, target, config.batch_size))
                if grid is not None and grid_reason is None:
                    attributions.grid = _batched(explain_fn, model, grid.images.to(device), grid.target.to(device),
                                                 config.batch_size)  # fmt: skip
                yield attributions
            if grid is not None:
                grid.attributions = None if attributions.grid is None else attributions.grid.to(device)
            ctx = MetricContext(model=model, x=xe, target=target, attributions=attributions.main.to(device),
                                explain=explain_fn, masks=masks, grid=grid, baseline=config.baseline,
                                seed=config.seed, n_sanity=config.n_sanity, batch_size=config.batch_size)  # fmt: skip
            for name in [b for a, b in todo if a == method]:
                bar.set_postfix_str(f"{method}: {name}")
                ctx.details = {}
                yield _score(name, method, ctx, grid, grid_reason)
                bar.update(1)


def run_suite(model: nn.Module, x: torch.Tensor, y: torch.Tensor, clean_pred: torch.Tensor,
              **kwargs: Any) -> list[MetricScore]:  # fmt: skip
    """All scores of :func:`iter_suite` as a list."""
    return [item for item in iter_suite(model, x, y, clean_pred, **kwargs) if isinstance(item, MetricScore)]


def _explainer(method: str, background: torch.Tensor | None, config: SuiteConfig):
    kwargs: dict[str, Any] = dict(config.options_for(method))
    entry = METHODS.get(method)
    if entry.needs_background:
        if background is None:
            raise ValueError(f"{method} needs background (training) images")
        kwargs["background"] = background
    if entry.randomised:
        kwargs["seed"] = config.seed
    return partial(_explain_positional, method=method, kwargs=kwargs)


def _explain_positional(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, method: str, kwargs: dict):
    return explain(model, x, target, method, **kwargs)


def _batched(explain_fn, model: nn.Module, x: torch.Tensor, target: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([explain_fn(model, x[i : i + batch_size], target[i : i + batch_size])
                      for i in range(0, len(x), batch_size)])  # fmt: skip


def _score(name: str, method: str, ctx: MetricContext, grid: GridInputs | None, grid_reason: str | None) -> MetricScore:
    spec = METRICS.get(name)
    details: dict[str, Any] = {"family": spec.family, "higher_is_better": spec.higher_is_better}
    if name == "gridpg":
        if grid is not None:
            details.update(recognition=float(grid.recognition.mean()), chance=grid.chance, native=grid.native,
                           composites=len(grid.recognition))  # fmt: skip
        if grid_reason is not None:
            return MetricScore(method, name, [], {**details, "not_applicable": grid_reason})
    try:
        values = spec.compute(ctx).detach().double().cpu()
    except NotApplicable as exc:
        return MetricScore(method, name, [], {**details, "not_applicable": str(exc)})
    details.update(ctx.details)
    if "mask" in spec.needs and ctx.masks is not None:
        outside = (ctx.attributions * (~ctx.masks)).flatten(1)
        if bool((outside == 0).all()):
            details["trivial"] = (
                f"{method} assigns exactly zero outside the object mask on every image (e.g. zero background "
                "times anything), so this localisation score is 1 by construction, not a finding"
            )
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        details["dropped_non_finite"] = int((~finite).sum())
    kept = [float(v) for v in values[finite]]
    if not kept:
        details["not_applicable"] = "no finite values"
    return MetricScore(method, name, kept, details)


def _grid_inputs(model, x, y, clean_pred, config: SuiteConfig, num_classes: int, device: torch.device):
    """Composites, their per-cell targets and the recognition check; (None, reason) when GridPG is n/a."""
    from harness.stats import bootstrap_interval

    generator = torch.Generator().manual_seed(config.seed)
    try:
        comps = make_composites(x, y, clean_pred == y, n_composites=max(N_RECOGNITION, config.n_composites),
                                generator=generator)  # fmt: skip
    except ValueError as exc:
        return None, str(exc)
    comps = fit_to_model(model, comps, num_classes, tuple(x.shape[2:]), device)
    rec = recognition(model, comps, device=device)  # cheap (forward passes only): on all composites
    chance = chance_recognition(num_classes)
    cells = comps.cell_classes.shape[1]
    scored = slice(0, config.n_composites)  # attributions (expensive) only for the first n_composites
    grid = GridInputs(
        images=comps.images[scored].repeat_interleave(cells, dim=0),
        target=comps.cell_classes[scored].flatten(),
        cell=torch.arange(cells).repeat(config.n_composites),
        recognition=rec,
        chance=chance,
        native=comps.native,
    )
    low, _ = bootstrap_interval(rec.tolist(), seed=config.seed)
    mean = float(rec.mean())
    if math.isnan(low) or low <= chance + RECOGNITION_MARGIN:
        return grid, (
            f"the model does not clearly recognise the composite cells: {mean:.2f} of 4 cell classes in its top 4 "
            f"(95% lower bound {low:.2f}; chance {chance:.2f}; needed > {chance + RECOGNITION_MARGIN:.2f})"
        )
    return grid, None


# Leaderboard headline: these metrics (normalised faithfulness, localisation, sanity, complexity) for this method
# in the main table; the correlation section covers them for every method a run has.
HEADLINE_METHOD = "expected_gradients"
HEADLINE_METRICS: tuple[str, ...] = (
    "abpc", "deletion_relative", "gridpg", "relevance_mass_ratio", "randomisation", "sparseness",
)  # fmt: skip
