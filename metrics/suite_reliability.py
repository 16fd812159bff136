"""The reliability part of the suite: MetaQuantus noise resilience and adversary reactivity (metrics.reliability)
of each requested headline metric, measured with the run's own attribution methods (the board's: expected
gradients and integrated gradients), stored under the method name ``reliability``, with a verdict against a noise
metric's null (metrics.reliability_null).

Settings (documented in README, "Metric reliability"): the first ``N_IMAGES`` explained images, both perturbation
tests with ``ITERATIONS`` x ``PERTURBATIONS`` perturbations (the paper's runs: 3 x 5; 2 x 5 here for CPU cost),
MetaQuantus's (Fashion-)MNIST noise levels, the run's methods at the run's settings except integrated gradients
(one U[0,1] baseline and 16 steps inside the perturbations). As MetaQuantus 0.0.5 (its ``InputPerturbationTest``
explains ``x_batch``, not the perturbed batch, and passes the same ``s_batch``): the input test scores the clean
input's explanations on the perturbed input, and the object masks are those of the clean images. A metric of the
attributions alone therefore cannot move in the input test (its IAC_NR and IEC_NR there are 1, its IAC_AR and IEC_AR
0): that is MetaQuantus's definition, and the noise null is simulated under the same one. Its adversary reactivity
is then at most half its model test's, below the noise threshold (~0.56), so sparseness and the mass ratio cannot be
found reliable. Cost: expected gradients in the model test, no explanations in the input test: the CPU time of the
former saliency + re-explained-input setting (543 s against 534 s, standard model, 6 metrics, 1 x 2 perturbations).

Verdict: *reliable* when both noise resilience (mean of IAC_NR and IEC_NR) and adversary reactivity (mean of IAC_AR
and IEC_AR) exceed the upper 95% quantile of a noise metric's in the same setting (the run's kept images, methods,
iterations and perturbations; ``NULL_DRAWS`` simulated noise metrics, seed ``NULL_SEED``): a pure-noise metric
passes in at most 5% of runs (0.03% in simulation), where the old bar of 0.5 passed it in 14%. ``kept_counts`` are
stored with the criteria so that the parent process recomputes the verdict (``stored_verdict``). Metrics in
``NOT_ASSESSED`` are never measured and never count as reliable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from metrics.attribution import METHODS
from metrics.registry import METRICS, MetricContext
from metrics.reliability import ReliabilityResult, reliability_of
from metrics.reliability_null import (
    ALPHA,
    NULL_DRAWS,
    ReliabilityVerdict,
    kept_counts,
    not_assessed,
    reliability_verdict,
    verdict_from_counts,
)

METHOD = "reliability"
RELIABILITY_METHODS = ("expected_gradients", "integrated_gradients")  # the default suite's methods (the board's)
RELIABILITY_OPTIONS = (("integrated_gradients", "n_trials", 1), ("integrated_gradients", "n_steps", 16))
N_IMAGES = 16
ITERATIONS = 2
PERTURBATIONS = 5
INPUT_EXPLANATIONS = "original"  # MetaQuantus 0.0.5's input test: the clean input's explanations
NULL_SEED = 0
NOT_ASSESSED = {
    "gridpg": "not assessed: scored on composites, not on the explained images the perturbations act on",
    "randomisation": "not assessed: re-explains every randomised layer inside every perturbation (cost)",
    "randomisation_efficient": "not assessed: re-explains the randomised model inside every perturbation (cost)",
    "max_sensitivity": "not assessed: perturbs and re-explains the input itself inside every perturbation (cost)",
}
EXCLUDED = frozenset(NOT_ASSESSED)


def reliability_metrics(metrics: tuple[str, ...]) -> tuple[str, ...]:
    """The requested headline metrics whose reliability the suite measures."""
    return tuple(m for m in metrics if METRICS.get(m).headline and m not in EXCLUDED)


def reliability_methods(methods: tuple[str, ...]) -> tuple[str, ...]:
    """The attribution methods reliability is measured with: the run's own methods, controls left out (the
    board's runs: expected gradients and integrated gradients). With one method IEC_NR is 1 for every metric; the
    noise null has the same number of methods, so the verdict stays calibrated."""
    return tuple(m for m in methods if not METHODS.get(m).control)


class _SharedContexts:
    """One :class:`MetricContext` per (model, images, attributions) call, shared by the metrics scored on it, so
    that e.g. ABPC and relative deletion reuse the same MoRF curve as in the suite itself. ``masks``: the clean
    images' object masks ``(N, 1, H, W)`` (or None), used for every call, as MetaQuantus's ``s_batch``."""

    def __init__(self, masks: Tensor | None, seed: int, batch_size: int) -> None:
        self.masks, self.seed, self.batch_size = masks, seed, batch_size
        self.key: tuple[Any, ...] | None = None
        self.ctx: MetricContext | None = None

    def get(self, model: nn.Module, x: Tensor, attributions: Tensor, target: Tensor) -> MetricContext:
        key = (id(model), x.data_ptr(), tuple(x.shape), attributions.data_ptr(), tuple(attributions.shape))
        if key != self.key:
            self.key = key
            self.ctx = MetricContext(
                model=model,
                x=x,
                target=target,
                attributions=attributions,
                explain=None,
                masks=self.masks,
                seed=self.seed,
                batch_size=self.batch_size,
            )
        return self.ctx


def reliability_scores(
    model: nn.Module,
    x: Tensor,
    target: Tensor,
    *,
    metrics: tuple[str, ...],
    explain_fns: dict[str, Callable[[nn.Module, Tensor, Tensor], Tensor]],
    masks: Callable[[Tensor], Tensor | None],
    seed: int,
    batch_size: int,
) -> dict[str, tuple[list[float], dict[str, Any]]]:
    """``{metric: (per-iteration MC values, details with the criteria, kept counts and verdict)}`` on the first
    ``N_IMAGES`` of x (``masks`` is called once, on those clean images)."""
    x, target = x[:N_IMAGES], target[:N_IMAGES]
    shared = _SharedContexts(masks(x), seed, batch_size)

    def metric_fn(name: str) -> Callable[[nn.Module, Tensor, Tensor, Tensor], Tensor]:
        spec = METRICS.get(name)
        return lambda m, xs, a, t: spec.compute(shared.get(m, xs, a, t)).detach().double()

    results = reliability_of(
        model,
        x,
        target,
        metrics={name: (metric_fn(name), METRICS.get(name).higher_is_better) for name in metrics},
        explain_fns=explain_fns,
        iterations=ITERATIONS,
        n_perturbations=PERTURBATIONS,
        input_explanations=INPUT_EXPLANATIONS,
        generator=torch.Generator().manual_seed(seed),
        batch_size=batch_size,
    )
    return {name: _summary(name, result) for name, result in results.items()}


def _summary(name: str, result: ReliabilityResult) -> tuple[list[float], dict[str, Any]]:
    per_iteration = []
    tests = {"model": result.model_test, "input": result.input_test}
    for test in tests.values():
        if test is None:
            continue
        for i in range(test.iec_nr_values.shape[0]):
            parts = [test.iac_nr_values[:, i], test.iac_ar_values[:, i], test.iec_nr_values[i], test.iec_ar_values[i]]
            per_iteration.append(float(torch.stack([p.double().nanmean() for p in parts]).mean()))
    verdict = reliability_verdict(name, result, seed=NULL_SEED)
    details = {
        "family": "reliability",
        "higher_is_better": True,
        "mc": result.mc,
        "iac_nr": result.iac_nr,
        "iac_ar": result.iac_ar,
        "iec_nr": result.iec_nr,
        "iec_ar": result.iec_ar,
        "by_test": {name: {"mc": t.mc, "mc_std": t.mc_std} for name, t in tests.items() if t is not None},
        "methods": list(result.methods),
        "settings": {
            "n_images": int(next(t for t in tests.values() if t is not None).scores.shape[1]),
            "iterations": ITERATIONS,
            "perturbations": PERTURBATIONS,
            "input_explanations": INPUT_EXPLANATIONS,
        },
        "kept_counts": {test: {"nr": nr.tolist(), "ar": ar.tolist()} for test, (nr, ar) in kept_counts(result).items()},
        **verdict_details(verdict),
    }
    return [v for v in per_iteration if v == v], details


def verdict_details(verdict: ReliabilityVerdict) -> dict[str, Any]:
    """The stored form of a verdict: ``noise_resilience``, ``adversary_reactivity``, ``reliable`` (bool),
    ``status``, ``thresholds`` and ``p_values`` ({"noise_resilience": ..., "adversary_reactivity": ...}),
    ``null_draws``, ``alpha`` and ``reason``."""

    def pair(values: tuple[float, float]) -> dict[str, float]:
        return {"noise_resilience": values[0], "adversary_reactivity": values[1]}

    return {
        "noise_resilience": verdict.noise_resilience,
        "adversary_reactivity": verdict.adversary_reactivity,
        "reliable": verdict.reliable,
        "status": verdict.status,
        "thresholds": pair(verdict.thresholds),
        "p_values": pair(verdict.p_values),
        "null_draws": verdict.null_draws,
        "alpha": verdict.alpha,
        "reason": verdict.reason,
    }


def stored_verdict(metric: str, details: Mapping[str, Any] | None) -> ReliabilityVerdict:
    """A metric's reliability verdict on one run, recomputed from its stored (or received) details: the criteria,
    the kept-image counts, the methods and ``settings["n_images"]`` (nothing the worker says about the verdict
    itself is used). "not assessed" for a metric in ``NOT_ASSESSED``, one without a reliability score
    (``details`` None), and one stored before the noise threshold (no ``kept_counts``).

    Args:
        metric: the metric's name.
        details: the reliability score's details, or None.

    Returns:
        ``ReliabilityVerdict``.

    Raises:
        ValueError: malformed details (missing criteria, methods or settings, counts out of range).

    Example:
        >>> stored_verdict("gridpg", None).status
        'not assessed'
    """
    if metric in NOT_ASSESSED:
        return not_assessed(metric, NOT_ASSESSED[metric])
    if details is None:
        return not_assessed(metric, "not assessed: no reliability score (run --reliability)")
    try:
        raw = [details[k] for k in ("iac_nr", "iac_ar", "iec_nr", "iec_ar")]
        criteria = tuple(math.nan if v is None else float(v) for v in raw)
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"the reliability details of {metric} lack criteria") from None
    if "kept_counts" not in details:
        return replace(
            not_assessed(metric, "not assessed: measured before the noise threshold (rescore with --reliability)"),
            noise_resilience=(criteria[0] + criteria[2]) / 2,
            adversary_reactivity=(criteria[1] + criteria[3]) / 2,
        )
    try:
        counts = {
            test: (np.asarray(c["nr"], dtype=np.int64), np.asarray(c["ar"], dtype=np.int64))
            for test, c in details["kept_counts"].items()
        }
        n_methods, n_images = len(details["methods"]), int(details["settings"]["n_images"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ValueError(f"the reliability details of {metric} lack kept_counts, methods or settings") from None
    return verdict_from_counts(metric, criteria, counts, n_methods, n_images, alpha=ALPHA, draws=NULL_DRAWS)
