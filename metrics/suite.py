"""The interpretability suite of a run: attribution methods x metrics on the first ``n_explain`` test images.

Default suite (documented in README): expected_gradients (the seed paper's SHAP) and integrated_gradients
(uniform-noise baselines, as the paper) x deletion/insertion AUC, ABPC, relative deletion (U[0,1] and ROAD fills;
each scored on the target's probability and on its logit, from the same forward passes), faithfulness correlation,
relevance mass ratio, pointing game, GridPG, randomisation (MPRT and EfficientMPRT) and sparseness; plus the
controls (metrics/controls.py) scored with the requested headline metrics (and their other scored output), so that
every headline score has a model-free bar it must beat; plus each curve metric's floor and ceiling for the model
(metrics/bounds.py), once per run. Every method explains the same function of the model: the target class's logit
(``output="logit"``; ``"probability"``, the softmax probability, as an option recorded with the run).

Long because it is the one call that runs every method, control and metric with shared contexts and batching; the
reliability part lives in suite_reliability.py.
"""

from __future__ import annotations

import dataclasses
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
from metrics.bounds import BOUNDS, CEILING_TEXT, FLOOR_TEXT, bound
from metrics.composites import (
    Composites,
    chance_recognition,
    fit_to_model,
    make_composites,
    object_masks,
    recognised_cells,
    recognition,
)
from metrics.controls import CONTROLS, control_explainer
from metrics.curves import RunInputs
from metrics.functional.degenerate import DEGENERATE_KINDS, Degenerate, count_degenerate, degenerate_maps
from metrics.registry import METRICS, GridInputs, MetricContext, MetricSpec, NotApplicable, output_variant

DEFAULT_METHODS: tuple[str, ...] = ("expected_gradients", "integrated_gradients")
DEFAULT_METRICS: tuple[str, ...] = (
    "deletion_auc",
    "insertion_auc",
    "abpc",
    "deletion_relative",
    "deletion_auc_road",
    "abpc_road",
    "deletion_relative_road",
    "deletion_auc_logit",
    "insertion_auc_logit",
    "abpc_logit",
    "deletion_relative_logit",
    "deletion_auc_road_logit",
    "abpc_road_logit",
    "deletion_relative_road_logit",
    "faithfulness_correlation",
    "relevance_mass_ratio",
    "pointing_game",
    "gridpg",
    "randomisation",
    "randomisation_efficient",
    "sparseness",
)
DEFAULT_CONTROLS: tuple[str, ...] = CONTROLS
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
    n_composites: int = 16
    target: Literal["label", "predicted"] = "label"
    baseline: str = "uniform"
    seed: int = 0
    batch_size: int = 256
    n_background: int = 200
    method_options: tuple[tuple[str, str, Any], ...] = DEFAULT_METHOD_OPTIONS
    controls: tuple[str, ...] = DEFAULT_CONTROLS
    output: Literal["logit", "probability"] = "logit"
    reliability: bool = False  # also MetaQuantus reliability of the headline metrics (metrics/suite_reliability.py)
    bounds: bool = True  # each curve metric's floor and ceiling (metrics/bounds.py); one rank's unit when distributed

    def options_for(self, method: str) -> dict[str, Any]:
        """Keyword arguments for ``method`` (``method_options`` rows are (method, key, value)); every method that
        takes ``output`` explains ``self.output`` unless an option says otherwise."""
        options = {key: value for name, key, value in self.method_options if name == method}
        if "output" in inspect.signature(METHODS.get(method).fn).parameters:
            options.setdefault("output", self.output)
        return options

    def pairs(self) -> list[tuple[str, str]]:
        """Every (method, metric) scored: methods x metrics, then the controls x the requested metrics that have
        controls (``controlled``), then (with ``bounds``) the bounds x the requested perturbation-curve metrics."""
        pairs = [(a, b) for a in self.methods for b in self.metrics]
        pairs += [(c, b) for c in self.controls for b in self.metrics if controlled(b) and (c, b) not in pairs]
        if self.bounds:
            pairs += [(which, b) for which in BOUNDS for b in self.metrics if METRICS.get(b).normalisable]
        if self.reliability:
            from metrics.suite_reliability import METHOD, reliability_metrics

            pairs += [(METHOD, b) for b in reliability_metrics(self.metrics)]
        return pairs

    def validate(self) -> None:
        for name in self.methods:
            METHODS.get(name)
        for name, key, _ in self.method_options:
            accepted = inspect.signature(METHODS.get(name).fn).parameters
            if key not in accepted or key in ("model", "x", "target", "background", "seed"):
                options = [p for p in accepted if p not in ("model", "x", "target", "background", "seed")]
                raise ValueError(f"{name} has no option {key!r}; its options: {', '.join(options)}")
        for name in self.metrics:
            if METRICS.get(name).stage != "attribution":
                raise ValueError(f"{name} is not computed per attribution method")
        if self.target not in ("label", "predicted"):
            raise ValueError(f"target must be 'label' or 'predicted', got {self.target!r}")
        if self.output not in ("logit", "probability"):
            raise ValueError(f"output must be 'logit' or 'probability', got {self.output!r}")
        for name in self.controls:
            if not METHODS.get(name).control:
                raise ValueError(f"{name} is not a control (see metrics/controls.py)")
        if min(self.n_explain, self.n_sanity, self.n_composites, self.batch_size) < 1:
            raise ValueError("n_explain, n_sanity, n_composites and batch_size must be positive")


def controlled(name: str) -> bool:
    """Whether the controls are scored on metric ``name``: the headline metrics, the same curve metrics scored on
    the other output, and the metrics taken out of the headline (their controls show why)."""
    spec = METRICS.get(name)
    return spec.headline or METRICS.get(output_variant(name, "probability")).headline or bool(spec.off_headline)


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
    todo = [pair for pair in config.pairs() if pair not in done]
    shared: dict[str, Any] = {}  # the run's method-independent work (fill draws, random curves, bounds)
    with tqdm(total=len(todo), desc="interpretability", unit="score", disable=not progress, leave=False) as bar:
        for method in dict.fromkeys(a for a, _ in todo if a in METHODS):
            explain_fn = _explainer(method, background, config)
            attributions = cached.get(method)
            if attributions is None:
                bar.set_postfix_str(f"{method}: attributions")
                # a randomised method (or control) is seeded per call: it explains all images in one call (its own
                # internal batching bounds memory), so that its numbers do not depend on batch_size
                seeded = METHODS.get(method).randomised
                size = max(len(xe), len(grid.images) if grid is not None else 0) if seeded else config.batch_size
                attributions = Attributions(method, _batched(explain_fn, model, xe, target, size))
                if grid is not None and grid_reason is None:
                    attributions.grid = _batched(
                        explain_fn, model, grid.images.to(device), grid.target.to(device), size
                    )
                yield attributions
            if grid is not None:
                grid.attributions = None if attributions.grid is None else attributions.grid.to(device)
            ctx = MetricContext(
                model=model,
                x=xe,
                target=target,
                attributions=attributions.main.to(device),
                explain=explain_fn,
                masks=masks,
                grid=grid,
                baseline=config.baseline,
                seed=config.seed,
                n_sanity=config.n_sanity,
                batch_size=config.batch_size,
                shared=shared,
            )
            for name in [b for a, b in todo if a == method]:
                bar.set_postfix_str(f"{method}: {name}")
                ctx.details = {}
                if METHODS.get(method).control and "explain" in METRICS.get(name).needs:
                    # a control explains every randomised / perturbed model with fresh noise: what is left of the
                    # score then is the input's structure alone (e.g. the floor of MPRT), not identical draws
                    fresh = control_explainer(method, generator=ctx.generator(f"{method}:{name}"))
                    yield _score(name, method, dataclasses.replace(ctx, explain=fresh), grid, grid_reason)
                else:
                    yield _score(name, method, ctx, grid, grid_reason)
                bar.update(1)
        bounds = [(a, b) for a, b in todo if a in BOUNDS]
        if bounds:
            run = RunInputs(model, xe, target, config.baseline, config.seed, config.batch_size, shared)
            for which, name in bounds:
                bar.set_postfix_str(f"{which}: {name}")
                yield _bound_score(run, name, which)
                bar.update(1)
        wanted = tuple(b for a, b in todo if a not in METHODS and a not in BOUNDS)
        if wanted:
            bar.set_postfix_str("reliability")
            yield from _reliability(model, xe, target, wanted, background, config, masks is not None)
            bar.update(len(wanted))


def _reliability(model, x, target, metrics, background, config: SuiteConfig, has_masks: bool) -> Iterator[MetricScore]:
    """MetaQuantus reliability of ``metrics`` with the run's own methods (the board's: expected gradients, and
    integrated gradients, whose ranking against it is what the inter-consistency criteria compare)."""
    from metrics.suite_reliability import METHOD, RELIABILITY_OPTIONS, reliability_methods, reliability_scores

    options = (*config.method_options, *RELIABILITY_OPTIONS)  # later rows win: a cheaper IG inside every perturbation
    cheap = dataclasses.replace(config, method_options=options)
    methods = reliability_methods(config.methods)
    if not methods:
        raise ValueError(
            "reliability is measured with the suite's own attribution methods, and this suite has none: add one with "
            "methods=..., or score reliability in the suite that has the run's methods"
        )
    explain_fns = {m: _explainer(m, background, cheap) for m in methods}
    scores = reliability_scores(
        model,
        x,
        target,
        metrics=metrics,
        explain_fns=explain_fns,
        masks=(lambda xs: object_masks(xs)) if has_masks else (lambda xs: None),
        seed=config.seed,
        batch_size=config.batch_size,
    )
    for name, (values, details) in scores.items():
        if not values:
            details["not_applicable"] = "no perturbation kept an image (all criteria undefined)"
        yield MetricScore(METHOD, name, values, details)


def run_suite(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, clean_pred: torch.Tensor, **kwargs: Any
) -> list[MetricScore]:
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
    return torch.cat(
        [explain_fn(model, x[i : i + batch_size], target[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    )


def _score(name: str, method: str, ctx: MetricContext, grid: GridInputs | None, grid_reason: str | None) -> MetricScore:
    spec = METRICS.get(name)
    details: dict[str, Any] = {"family": spec.family, "higher_is_better": spec.higher_is_better}
    details["degenerate"] = count_degenerate(_degenerate_codes(ctx, "main"))
    if name == "gridpg":
        if grid is not None:
            details.update(
                recognition=float(grid.recognition.mean()),
                chance=grid.chance,
                native=grid.native,
                composites=len(grid.recognition),
            )
        if grid_reason is not None:
            return MetricScore(method, name, [], {**details, "not_applicable": grid_reason})
    on_grid = name == "gridpg" and ctx.grid is not None and ctx.grid.attributions is not None
    codes = _degenerate_codes(ctx, "grid" if on_grid else "main")
    if on_grid:
        details["degenerate_grid"] = count_degenerate(codes)
    undefined = torch.isin(codes, torch.tensor([int(Degenerate[k]) for k in spec.undefined_on], device=codes.device))
    if bool(undefined.all()):
        return MetricScore(method, name, [], {**details, "not_applicable": _degenerate_reason(name, spec, codes)})
    finite = codes != int(Degenerate.non_finite)
    run = ctx if bool(finite.all()) else _finite_subset(ctx, finite, on_grid)
    try:
        values = spec.compute(run).detach().double().cpu()
    except NotApplicable as exc:
        return MetricScore(method, name, [], {**details, "not_applicable": str(exc)})
    details.update(run.details)
    # values[k] belongs to the k-th finite image (the first len(values) of them for the sanity metrics)
    seen = finite.nonzero().flatten()[: len(values)].cpu()
    dropped = undefined[seen.to(undefined.device)].cpu()
    covered_all = len(seen) == int(finite.sum())
    span = len(codes) if covered_all else (int(seen[-1]) + 1 if len(seen) else 0)  # the images the metric covered
    if bool(undefined[:span].any()):
        details["dropped_degenerate"] = count_degenerate(codes[:span][undefined[:span]])
        details["degenerate_rule"] = _degenerate_reason(name, spec, None)
        values, seen = values[~dropped], seen[~dropped]
    finite_values = torch.isfinite(values)
    if not bool(finite_values.all()):
        details["dropped_non_finite"] = int((~finite_values).sum())
    values, seen = values[finite_values], seen[finite_values]
    if on_grid:  # only rows whose cell the model recognises; pairs of models meet on the rows both recognise
        if ctx.grid.recognised is not None:
            recognised = ctx.grid.recognised.cpu()[seen]
            values, seen = values[recognised], seen[recognised]
        ids = ctx.grid.row_ids or tuple(str(i) for i in range(len(codes)))
        details["rows"] = [ids[int(i)] for i in seen]
    else:
        details["index"] = seen.tolist()  # which of the explained images each value belongs to (for pairing)
    kept = [float(v) for v in values]
    if not kept:
        details["not_applicable"] = (
            _degenerate_reason(name, spec, codes)
            if bool(dropped.any() and dropped.all())
            else "the model recognises none of the scored composite cells"
            if on_grid
            else "no finite values"
        )
    return MetricScore(method, name, kept, details)


def _bound_score(run: RunInputs, name: str, which: str) -> MetricScore:
    """The floor or ceiling of metric ``name`` on every explained image (metrics/bounds.py)."""
    spec = METRICS.get(name)
    values = bound(run, name, which).detach().double().cpu()
    details: dict[str, Any] = {
        "family": spec.family,
        "higher_is_better": spec.higher_is_better,
        "settings": {"floor": FLOOR_TEXT, "ceiling": CEILING_TEXT},
    }
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        details["dropped_non_finite"] = int((~finite).sum())
    details["index"] = finite.nonzero().flatten().tolist()
    kept = [float(v) for v in values[finite]]
    if not kept:
        details["not_applicable"] = "no finite values"
    return MetricScore(which, name, kept, details)


def _degenerate_codes(ctx: MetricContext, which: str) -> torch.Tensor:
    """Degenerate-map codes ``(N,)`` of the method's maps ("main") or of its GridPG composites ("grid"), computed
    once per method (``ctx.cache``)."""
    key = f"degenerate:{which}"
    if key not in ctx.cache:
        maps = ctx.attributions if which == "main" else ctx.grid.attributions
        ctx.cache[key] = degenerate_maps(maps)
    return ctx.cache[key]


def _degenerate_reason(name: str, spec: MetricSpec, codes: torch.Tensor | None) -> str:
    names = [k.replace("_", "-") for k in DEGENERATE_KINDS if k in spec.undefined_on]
    kinds = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
    rule = f"{name} is undefined on {kinds} attribution maps"
    if codes is None:
        return rule
    counts = ", ".join(f"{k}: {v}" for k, v in count_degenerate(codes).items() if v)
    return f"{rule}, and every map it would score is degenerate ({counts})"


def _finite_subset(ctx: MetricContext, keep: torch.Tensor, on_grid: bool) -> MetricContext:
    """The context restricted to the images (or GridPG composite rows) whose maps are finite; its own cache, shared
    by the metrics of this method that run on the same subset."""
    if on_grid:
        g = ctx.grid
        rows = keep.to(g.images.device)
        subset = {"images": g.images[rows], "target": g.target[rows], "cell": g.cell[rows]}
        grid = dataclasses.replace(g, **subset, attributions=g.attributions[keep])
        return dataclasses.replace(ctx, grid=grid, details={}, cache=ctx.cache.setdefault("finite_grid", {}))
    masks = None if ctx.masks is None else ctx.masks[keep]
    subset = {"x": ctx.x[keep], "target": ctx.target[keep], "attributions": ctx.attributions[keep], "masks": masks}
    cache = ctx.cache.setdefault("finite_main", {})
    # the run's shared draws are for all images: the subset draws its own
    return dataclasses.replace(ctx, **subset, details={}, cache=cache, shared=cache.setdefault("shared", {}))


def _grid_inputs(model, x, y, clean_pred, config: SuiteConfig, num_classes: int, device: torch.device):
    """Composites, their per-cell targets and the recognition check; (None, reason) when GridPG is n/a.

    The composites are model-independent: drawn (seeded) from all the run's test images, whatever the model
    predicts, so every model of a data set is scored on the same composites; each (composite, cell) row is scored
    only where the model recognises the cell (its class is among the model's top 4 for the composite).
    """
    from metrics.stats import bootstrap_interval

    generator = torch.Generator().manual_seed(config.seed)
    try:
        comps = make_composites(
            x,
            y,
            torch.ones_like(y, dtype=torch.bool),
            n_composites=max(N_RECOGNITION, config.n_composites),
            generator=generator,
        )
    except ValueError as exc:
        return None, str(exc)
    comps = fit_to_model(model, comps, num_classes, tuple(x.shape[2:]), device)
    rec = recognition(model, comps, device=device)  # cheap (forward passes only): on all composites
    chance = chance_recognition(num_classes)
    cells = comps.cell_classes.shape[1]
    scored = slice(0, config.n_composites)  # attributions (expensive) only for the first n_composites
    top = recognised_cells(
        model,
        Composites(comps.images[scored], comps.cell_classes[scored], comps.sources[scored], comps.native),
        device=device,
    )
    row_ids = tuple(
        f"{'-'.join(str(int(s)) for s in comps.sources[m])}:{cell}"
        for m in range(config.n_composites)
        for cell in range(cells)
    )
    grid = GridInputs(
        images=comps.images[scored].repeat_interleave(cells, dim=0),
        target=comps.cell_classes[scored].flatten(),
        cell=torch.arange(cells).repeat(config.n_composites),
        recognition=rec,
        chance=chance,
        native=comps.native,
        recognised=top.flatten(),
        row_ids=row_ids,
    )
    low, _ = bootstrap_interval(rec.tolist(), seed=config.seed)
    mean = float(rec.mean())
    if math.isnan(low) or low <= chance + RECOGNITION_MARGIN:
        return grid, (
            f"the model does not clearly recognise the composite cells: {mean:.2f} of 4 cell classes in its top 4 "
            f"(95% lower bound {low:.2f}; chance {chance:.2f}; needed > {chance + RECOGNITION_MARGIN:.2f})"
        )
    return grid, None
