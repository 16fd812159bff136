"""The reliability part of the suite: MetaQuantus noise resilience and adversary reactivity (metrics.reliability)
of each requested headline metric, with saliency and integrated gradients (the suite's options), stored under the
method name ``reliability``.

Settings (documented in README, "Metric reliability"): the first ``N_IMAGES`` explained images, both perturbation
tests with ``ITERATIONS`` x ``PERTURBATIONS`` perturbations (the paper's runs: 3 x 5; 2 x 5 here for CPU cost),
integrated gradients with one U[0,1] baseline and 16 steps inside the perturbations, MetaQuantus's (Fashion-)MNIST
noise levels, and explanations of the perturbed input in the input test (MetaQuantus 0.0.5 scores the perturbed
input with the clean input's explanations, under which a metric of the attributions alone cannot move). GridPG
(composites) and the randomisation metrics (explanations of randomised models inside every perturbation) are not
measured. A metric is *reliable* here when both its noise resilience (mean of IAC_NR and IEC_NR) and its adversary
reactivity (mean of IAC_AR and IEC_AR) exceed 0.5: a metric that ignores its input scores NR 1 and AR 0, one that
is pure noise NR ~0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from metrics.registry import METRICS, MetricContext
from metrics.reliability import ReliabilityResult, reliability_of

METHOD = "reliability"
RELIABILITY_METHODS = ("saliency", "integrated_gradients")  # cheap, gradient-based, and rank differently
RELIABILITY_OPTIONS = (("integrated_gradients", "n_trials", 1), ("integrated_gradients", "n_steps", 16))
N_IMAGES = 16
ITERATIONS = 2
PERTURBATIONS = 5
EXCLUDED = frozenset({"gridpg", "randomisation", "randomisation_efficient", "max_sensitivity"})


def reliability_metrics(metrics: tuple[str, ...]) -> tuple[str, ...]:
    """The requested headline metrics whose reliability the suite measures."""
    return tuple(m for m in metrics if METRICS.get(m).headline and m not in EXCLUDED)


class _SharedContexts:
    """One :class:`MetricContext` per (model, images, attributions) call, shared by the metrics scored on it, so
    that e.g. ABPC and relative deletion reuse the same MoRF curve as in the suite itself."""

    def __init__(self, masks: Callable[[Tensor], Tensor | None], seed: int, batch_size: int) -> None:
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
                masks=self.masks(x),
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
    """``{metric: (per-iteration MC values, details with the four criteria)}`` on the first ``N_IMAGES`` of x."""
    x, target = x[:N_IMAGES], target[:N_IMAGES]
    shared = _SharedContexts(masks, seed, batch_size)

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
        input_explanations="perturbed",
        generator=torch.Generator().manual_seed(seed),
        batch_size=batch_size,
    )
    return {name: _summary(result) for name, result in results.items()}


def _summary(result: ReliabilityResult) -> tuple[list[float], dict[str, Any]]:
    per_iteration = []
    tests = {"model": result.model_test, "input": result.input_test}
    for test in tests.values():
        if test is None:
            continue
        for i in range(test.iec_nr_values.shape[0]):
            parts = [test.iac_nr_values[:, i], test.iac_ar_values[:, i], test.iec_nr_values[i], test.iec_ar_values[i]]
            per_iteration.append(float(torch.stack([p.double().nanmean() for p in parts]).mean()))
    nr, ar = (result.iac_nr + result.iec_nr) / 2, (result.iac_ar + result.iec_ar) / 2
    details = {
        "family": "reliability",
        "higher_is_better": True,
        "mc": result.mc,
        "iac_nr": result.iac_nr,
        "iac_ar": result.iac_ar,
        "iec_nr": result.iec_nr,
        "iec_ar": result.iec_ar,
        "noise_resilience": nr,
        "adversary_reactivity": ar,
        "reliable": bool(nr > 0.5 and ar > 0.5),
        "by_test": {name: {"mc": t.mc, "mc_std": t.mc_std} for name, t in tests.items() if t is not None},
        "methods": list(result.methods),
        "settings": {
            "n_images": N_IMAGES,
            "iterations": ITERATIONS,
            "perturbations": PERTURBATIONS,
            "input_explanations": "perturbed",
        },
    }
    return [v for v in per_iteration if v == v], details
