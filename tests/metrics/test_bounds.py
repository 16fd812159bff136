"""Floors and ceilings of the perturbation-curve metrics: against the same quantities built from the public
functional API (perturbation curves with explicit random orders, occlusion maps with explicit fills), the exact zero
floor of ABPC and relative deletion against a simulation of random orders, and the occlusion patch size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import metrics.curves
from metrics.bounds import BOUND_CEILING, BOUND_FLOOR, bound, ceiling, floor, occlusion_patch
from metrics.curves import N_FLOOR_ORDERS, RunInputs, seeded_generator
from metrics.functional import (
    abpc,
    curve_auc,
    deletion_auc,
    deletion_auc_relative,
    insertion_auc,
    perturbation_curve,
    pixel_occlusion,
    single_pixel_imputation,
)
from metrics.registry import METRICS

STEPS = 10  # curves of 10 steps: the bounds' construction, not the curves' resolution, is tested


@pytest.fixture
def run(standard_model, images, monkeypatch) -> RunInputs:
    monkeypatch.setattr(metrics.curves, "CURVE_STEPS", STEPS)
    return RunInputs(standard_model, images[0][:2], images[1][:2], seed=5)


def _draws(run: RunInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """The run's U[0,1] baseline and ROAD noise, drawn as documented (metrics/curves.py)."""
    base = torch.rand(run.x.shape, generator=seeded_generator(run.seed, "baseline"))
    z = torch.randn(run.x.shape, generator=seeded_generator(run.seed, "road"))
    return base, z


def _fill_kwargs(fill: str, base: torch.Tensor, z: torch.Tensor) -> dict:
    return {"baseline": base} if fill == "uniform" else {"fill": "road", "noise": z}


@pytest.mark.parametrize("fill", ["uniform", "road"])
def test_floor_is_the_mean_of_random_orders_or_exactly_zero(fill, run):
    base, z = _draws(run)
    kwargs = {**_fill_kwargs(fill, base, z), "n_steps": STEPS}
    suffix = "" if fill == "uniform" else "_road"
    for mode, name in (("deletion", "deletion_auc"), ("insertion", "insertion_auc")):
        generator = seeded_generator(run.seed, "random_order")  # the orders are drawn one after another
        aucs = []
        for _ in range(N_FLOOR_ORDERS):
            curve = perturbation_curve(
                run.model, run.x, run.x, run.target, order="random", mode=mode, generator=generator, **kwargs
            )
            aucs.append(curve_auc(curve, n_features=784))
        expected = torch.stack(aucs).mean(0)
        np.testing.assert_allclose(floor(run, name + suffix).numpy(), expected.numpy(), atol=1e-6, rtol=0)
        logit = perturbation_curve(
            run.model,
            run.x,
            run.x,
            run.target,
            order="random",
            mode=mode,
            score="logit",
            generator=seeded_generator(run.seed, "random_order"),
            **kwargs,
        )
        first = run.shared[f"random_auc:{fill}:{mode}:0"][1]  # the first order, scored on the logit
        np.testing.assert_allclose(first.numpy(), curve_auc(logit, n_features=784).numpy(), atol=1e-5, rtol=0)
    for name in ("abpc", "deletion_relative", "abpc_logit"):
        assert torch.equal(bound(run, name + suffix if "logit" not in name else name, BOUND_FLOOR), torch.zeros(2))
    # the random curve of relative deletion is the floor's first order
    generator = seeded_generator(run.seed, "random_order")
    relative = deletion_auc_relative(run.model, run.x, run.x, run.target, generator=generator, **kwargs)
    morf = deletion_auc(run.model, run.x, run.x, run.target, **kwargs)
    np.testing.assert_allclose(
        (relative + morf).numpy(), run.shared[f"random_auc:{fill}:deletion:0"][0].numpy(), atol=1e-6, rtol=0
    )


def test_zero_floor_is_the_mean_of_random_orders(standard_model, images):
    """ABPC and relative deletion of random orders average 0 (the exact floor used): 24 random maps on 3 images
    (10 steps), mean within 4 standard errors of 0, and not 0 per map (so the exact value is not the noisy one)."""
    x, y = images[0][:3], images[1][:3]
    base = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(1)
    values = {"abpc": [], "relative": []}
    for _ in range(24):
        a = torch.rand(x.shape, generator=generator)
        values["abpc"].append(abpc(standard_model, x, a, y, baseline=base, n_steps=STEPS))
        values["relative"].append(
            deletion_auc_relative(standard_model, x, a, y, baseline=base, n_steps=STEPS, generator=generator)
        )
    for name, v in values.items():
        v = torch.stack(v).flatten().double()
        assert abs(v.mean().item()) < 4 * v.std().item() / len(v) ** 0.5, name
        assert v.std().item() > 0.005, name


@pytest.mark.parametrize("fill", ["uniform", "road"])
def test_ceiling_is_the_best_occlusion_order_of_the_scored_output(fill, run):
    """Rebuilt from the public API: occlusion maps under both fills (the run's baseline, ROAD's single-pixel
    imputation with the run's noise), each scored by the metric under its own fill; best per image."""
    base, z = _draws(run)
    fills = {"uniform": base, "road": single_pixel_imputation(run.x, noise=z)}
    maps = {f: pixel_occlusion(run.model, run.x, run.target, fill=fills[f]) for f in fills}
    kwargs = {**_fill_kwargs(fill, base, z), "n_steps": STEPS}
    suffix = "" if fill == "uniform" else "_road"
    fns = {"deletion_auc": deletion_auc, "insertion_auc": insertion_auc, "abpc": abpc}
    for score, which in (("probability", 0), ("logit", 1)):
        for base_name, fn in fns.items():
            name = base_name + suffix + ("_logit" if score == "logit" else "")
            candidates = torch.stack(
                [fn(run.model, run.x, maps[f][which], run.target, score=score, **kwargs) for f in fills]
            )
            best = candidates.amax(0) if METRICS.get(name).higher_is_better else candidates.amin(0)
            np.testing.assert_allclose(ceiling(run, name).numpy(), best.numpy(), atol=1e-5, rtol=1e-6)
            assert torch.equal(bound(run, name, BOUND_CEILING), ceiling(run, name))
        # relative deletion's ceiling: the run's first random order minus the best MoRF area
        name = "deletion_relative" + suffix + ("_logit" if score == "logit" else "")
        morf = torch.stack(
            [deletion_auc(run.model, run.x, maps[f][which], run.target, score=score, **kwargs) for f in fills]
        )
        generator = seeded_generator(run.seed, "random_order")
        random = perturbation_curve(
            run.model,
            run.x,
            run.x,
            run.target,
            order="random",
            mode="deletion",
            score=score,
            generator=generator,
            **kwargs,
        )
        expected = curve_auc(random, n_features=784) - morf.amin(0)
        np.testing.assert_allclose(ceiling(run, name).numpy(), expected.numpy(), atol=1e-5)
    # there is room between floor (0) and ceiling for this model on both images
    assert bool((ceiling(run, "abpc" + suffix) > 0.1).all())


def test_bounds_refuse_other_metrics_and_patch_sizes(run):
    with pytest.raises(ValueError, match="only the perturbation-curve metrics"):
        floor(run, "sparseness")
    with pytest.raises(ValueError, match="which must be"):
        bound(run, "abpc", "bound_middle")
    assert [occlusion_patch(s, s) for s in (28, 32, 33, 64, 224)] == [1, 1, 3, 2, 7]
    assert occlusion_patch(299, 299) == 13
