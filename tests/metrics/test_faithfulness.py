"""Perturbation curves and their AUCs: against Quantus's PixelFlipping/RegionPerturbation, hand-computed curves of
a linear model, and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import torch

from metrics.functional import (
    abpc,
    curve_auc,
    deletion_auc,
    deletion_auc_relative,
    insertion_auc,
    perturbation_curve,
    perturbation_curve_scores,
)
from metrics.functional._perturb import resolve_baseline
from tests.metrics.conftest import ConstantLogits, LinearScore, run_quantus
from tests.metrics.rounding import (
    U32,
    U64,
    Float64,
    float64_per_image,
    gamma,
    logit_error_bound,
    metric_score_roundoff,
    probability_error_bound,
    softmax_rel_error,
)

# Against Quantus: both sides run the same float64 copy of the model (rounding.Float64) on identical images, so each
# probability is within e = rounding.probability_error_bound (from the logit bound for any input in [0, 1] and any
# summation order) of the exact one on either side, and ours is stored at u_s = rounding.metric_score_roundoff()
# (float32 while metrics.functional._perturb keeps scores in float32). The attributions are made distinct (ties
# within 1e-12, far below any float32 difference), so Quantus's unstable argsort and our stable sort agree.


def _distinct(a):
    """float64 attributions without exact ties: + i * 1e-12 max|a| / n at position i (both sides see these)."""
    a = a.double()
    ramp = torch.arange(a[0].numel(), dtype=torch.float64).reshape(a.shape[1:]) / a[0].numel()
    return a + 1e-12 * a.abs().amax() * ramp


@pytest.mark.parametrize("which", ["standard", "robust"])
def test_pixel_flipping_matches_quantus(which, request, images):
    model = request.getfixturevalue(f"{which}_model")
    x, y, a = images[0][:4], images[1][:4], _distinct(request.getfixturevalue(f"{which}_saliency")[:4])
    # Quantus's "black" is the image minimum; 0.0 is our "black". features_in_step=56 <=> n_steps=14.
    metric = quantus.PixelFlipping(features_in_step=56, perturb_baseline=0.0, disable_warnings=True)
    q = run_quantus(metric, Float64(model), x, y, a)
    ours = perturbation_curve(
        Float64(model), x.double(), a, y, order="morf", mode="deletion", baseline="black", n_steps=14
    )
    assert ours.shape == (4, 15)
    tol = 2 * probability_error_bound(logit_error_bound(model, (1, 28, 28))) + metric_score_roundoff()
    assert tol < 1e-5
    np.testing.assert_allclose(ours[:, 1:].numpy(), q, atol=tol, rtol=0)


@pytest.mark.parametrize("which", ["standard", "robust"])
def test_logit_pixel_flipping_matches_quantus(which, request, images):
    """score="logit" against Quantus's PixelFlipping with softmax=False (its target logit), on the same float64
    model: each logit is within the bound's error of the exact one on either side, and ours is stored in float32."""
    model = request.getfixturevalue(f"{which}_model")
    x, y, a = images[0][:4], images[1][:4], _distinct(request.getfixturevalue(f"{which}_saliency")[:4])
    metric = quantus.PixelFlipping(features_in_step=56, perturb_baseline=0.0, disable_warnings=True)
    q = run_quantus(metric, Float64(model), x, y, a, softmax=False)
    kwargs = {"order": "morf", "mode": "deletion", "baseline": "black", "n_steps": 14}
    ours = perturbation_curve(Float64(model), x.double(), a, y, score="logit", **kwargs)
    assert ours.shape == (4, 15)
    # both sides within the bound's error of the exact logit; ours rounded once more to float32 (relative u_s)
    error = 2 * float(logit_error_bound(model, (1, 28, 28)).error.max())
    assert error < 1e-4
    tol = error + 2 * metric_score_roundoff() * np.abs(q)
    assert bool((np.abs(ours[:, 1:].numpy() - q) <= tol).all())
    # one call scores both outputs from the same forward passes: equal to the separate calls
    both = perturbation_curve_scores(Float64(model), x.double(), a, y, **kwargs)
    assert torch.equal(both.logit, ours)
    assert torch.equal(both.probability, perturbation_curve(Float64(model), x.double(), a, y, **kwargs))
    for fn in (deletion_auc, insertion_auc, abpc, deletion_auc_relative):
        by_logit = fn(Float64(model), x.double(), a, y, baseline="black", n_steps=14, score="logit")
        assert by_logit.shape == (4,) and not torch.equal(by_logit, fn(Float64(model), x.double(), a, y, n_steps=14))
    with pytest.raises(ValueError, match="score"):
        perturbation_curve(model, x, a, y, score="log-probability", **kwargs)


@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_region_perturbation_matches_quantus(order, standard_model, images, standard_saliency):
    x, y, a = images[0][:4], images[1][:4], standard_saliency[:4].double()
    # Patch sums (49 terms, float64 on both sides, in different orders: relative error <= gamma_49 u64 each) must
    # not be near ties, or the two sides could order patches differently.
    sums = torch.sort(a.reshape(4, 4, 7, 4, 7).sum(dim=(2, 4)).flatten(1), dim=1).values
    assert bool(((sums[:, 1:] - sums[:, :-1]) > 4 * gamma(49, U64) * sums[:, -1:]).all())
    metric = quantus.RegionPerturbation(
        patch_size=7, order=order, regions_evaluation=10, perturb_baseline=0.0, disable_warnings=True
    )
    q = run_quantus(metric, Float64(standard_model), x, y, a)
    ours = perturbation_curve(
        Float64(standard_model), x.double(), a, y, order=order, mode="deletion", baseline="black", patch_size=7
    )
    assert ours.shape == (4, 17)
    # Two probabilities per difference on each side, two stored ones on ours, and the subtraction below.
    u_s = metric_score_roundoff()
    tol = 4 * probability_error_bound(logit_error_bound(standard_model, (1, 28, 28))) + 3 * u_s
    np.testing.assert_allclose((ours[:, :1] - ours[:, 1:11]).numpy(), q, atol=tol, rtol=0)


def _linear_case(n: int = 3, side: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(1, side, side, generator=g) * 0.5
    x = torch.rand(n, 1, side, side, generator=g)
    return LinearScore(weight), x, torch.zeros(n, dtype=torch.int64), weight * x


def _expected_deletion(weight, x, order_idx, counts):
    contrib = (weight * x).flatten(1).double().numpy()
    out = np.empty((x.shape[0], len(counts)))
    for i in range(x.shape[0]):
        for k, c in enumerate(counts):
            kept = np.ones(contrib.shape[1], dtype=bool)
            kept[order_idx[i, :c]] = False
            out[i, k] = 1 / (1 + np.exp(-contrib[i, kept].sum()))
    return out


def _linear_tolerance(a):
    """float32 curves of the linear model against _expected_deletion, which sums the same float32 products
    fl(w_p x_p) exactly: the model's logit is a float32 sum of 16 of them (error <= gamma_15 u32 sum |a|), the
    sigmoid is 1/4-Lipschitz, and the float32 softmax over 2 classes adds softmax_rel_error (range <= sum |a|)."""
    total = float(a.abs().flatten(1).sum(1).max())
    return 0.25 * gamma(15, U32) * total + softmax_rel_error(total, 2, U32)


@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_linear_model_deletion_curve_by_hand(order):
    model, x, target, a = _linear_case()
    curve = perturbation_curve(model, x, a, target, order=order, mode="deletion", baseline="black")
    flat = a.flatten(1).numpy()
    idx = np.argsort(-flat if order == "morf" else flat, axis=1, kind="stable")
    expected = _expected_deletion(model.weight, x, idx, range(17))
    tol = _linear_tolerance(a)
    np.testing.assert_allclose(curve.numpy(), expected, atol=tol, rtol=0)
    # MoRF with the exact contributions removes the largest evidence first: its curve never lies above LeRF's.
    if order == "morf":
        lerf = perturbation_curve(model, x, a, target, order="lerf", mode="deletion", baseline="black")
        assert bool((curve <= lerf + 2 * tol).all())


def test_ties_broken_by_lower_index_first():
    model, x, target, _ = _linear_case(n=2, side=4, seed=1)
    a = torch.tensor([3.0, 1.0, 3.0, 0.0] * 4).reshape(1, 1, 4, 4).repeat(2, 1, 1, 1)
    for order, key in (("morf", -a), ("lerf", a)):
        curve = perturbation_curve(model, x, a, target, order=order, mode="deletion", baseline="black", n_steps=16)
        idx = np.argsort(key.flatten(1).numpy(), axis=1, kind="stable")
        expected = _expected_deletion(model.weight, x, idx, range(17))
        np.testing.assert_allclose(curve.numpy(), expected, atol=_linear_tolerance(a), rtol=0)


def test_patch_curve_and_uneven_steps_by_hand():
    model, x, target, a = _linear_case(n=2, side=4, seed=2)
    curve = perturbation_curve(
        model, x, a, target, order="morf", mode="deletion", baseline="black", patch_size=2, n_steps=3
    )
    patch_of = (np.arange(4)[:, None] // 2 * 2 + np.arange(4)[None, :] // 2).reshape(-1)
    sums = np.stack([[a[i].flatten().numpy()[patch_of == p].sum() for p in range(4)] for i in range(2)])
    patch_order = np.argsort(-sums, axis=1, kind="stable")
    pixel_order = np.stack([np.concatenate([np.flatnonzero(patch_of == p) for p in row]) for row in patch_order])
    counts_pixels = [0, 4, 8, 16]  # floor(k * 4 / 3) patches = 0, 1, 2, 4
    expected = _expected_deletion(model.weight, x, pixel_order, counts_pixels)
    np.testing.assert_allclose(curve.numpy(), expected, atol=_linear_tolerance(a), rtol=0)


def test_curve_endpoints_and_insertion(standard_model, images, standard_saliency):
    # A per-image float64 model gives each image the same probability in any batch; the curve only stores it at
    # u_s (rounding.metric_score_roundoff), so the endpoints equal the direct probabilities to u_s * p <= u_s.
    model = float64_per_image(standard_model)
    x, y, a = images[0][:4].double(), images[1][:4], standard_saliency[:4].double()
    base = torch.full_like(x, 0.5)
    probs = lambda t: model(t).softmax(-1).gather(1, y[:, None]).squeeze(1)  # noqa: E731
    with torch.no_grad():
        p_x, p_base = probs(x), probs(base)
    deletion = perturbation_curve(model, x, a, y, order="morf", mode="deletion", baseline=base, n_steps=7)
    insertion = perturbation_curve(model, x, a, y, order="morf", mode="insertion", baseline=base, n_steps=7)
    tol = metric_score_roundoff() + 1e-12
    for curve, first, last in ((deletion, p_x, p_base), (insertion, p_base, p_x)):
        np.testing.assert_allclose(curve[:, 0].numpy(), first.numpy(), atol=tol, rtol=0)
        np.testing.assert_allclose(curve[:, -1].numpy(), last.numpy(), atol=tol, rtol=0)


def test_default_uniform_baseline_changes_background_black_does_not(standard_model, images):
    x, y = images[0][:4], images[1][:4]
    background = x == 0
    assert background.float().mean() > 0.3  # Fashion-MNIST: a zero background
    black = resolve_baseline("black", x, None)
    uniform = resolve_baseline("uniform", x, torch.Generator().manual_seed(0))
    assert bool((black[background] == x[background]).all())
    assert bool((uniform[background] != x[background]).all())
    # LeRF by a = x removes background first: with "black" the early curve is exactly flat, with "uniform" not.
    a = x.clone()
    kw = dict(order="lerf", mode="deletion", n_steps=28)
    flat = perturbation_curve(standard_model, x, a, y, baseline="black", **kw)
    moving = perturbation_curve(standard_model, x, a, y, generator=torch.Generator().manual_seed(0), **kw)
    assert bool((flat[:, :3] == flat[:, :1]).all())
    assert bool((moving[:, 1:3] != moving[:, :1]).any())


def test_batched_equals_per_example_and_batch_size_invariant(standard_model, images, standard_saliency):
    # A per-image float64 model makes each image's score independent of its batch: equal by construction (1e-12
    # only absorbs float64 kernel nondeterminism, were there any).
    model = float64_per_image(standard_model)
    x, y, a = images[0][:5].double(), images[1][:5], standard_saliency[:5].double()
    base = torch.rand(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    kw = dict(order="morf", mode="deletion", baseline=base, patch_size=2, n_steps=14)
    full = perturbation_curve(model, x, a, y, **kw)
    single = torch.cat(
        [
            perturbation_curve(model, x[i : i + 1], a[i : i + 1], y[i : i + 1], **{**kw, "baseline": base[i : i + 1]})
            for i in range(5)
        ]
    )
    small = perturbation_curve(model, x, a, y, batch_size=7, **kw)
    np.testing.assert_allclose(full.numpy(), single.numpy(), atol=1e-12, rtol=0)
    np.testing.assert_allclose(full.numpy(), small.numpy(), atol=1e-12, rtol=0)


def test_generator_determinism(standard_model, images, standard_saliency):
    x, y, a = images[0][:3], images[1][:3], standard_saliency[:3]
    run = lambda seed: perturbation_curve(  # noqa: E731
        standard_model,
        x,
        a,
        y,
        order="random",
        mode="deletion",
        n_steps=8,  # noqa: E731
        generator=torch.Generator().manual_seed(seed),
    )
    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_auc_identities_with_constant_model(images):
    x, y = images[0][:3], torch.zeros(3, dtype=torch.int64)
    model = ConstantLogits([2.0, 0.0, 1.0])
    p = float(torch.tensor([2.0, 0.0, 1.0], dtype=torch.float64).softmax(0)[0])
    a = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    # float32: the constant curve is the float32 softmax of (2, 0, 1) (relative error softmax_rel_error), and the
    # float32 trapezoid over fractions c_k / 784 (each rounded: <= u (f_k + f_{k+1}) per width, 2 n u in all) with
    # n = 10 steps adds <= (2n + gamma_{n+3}) u of a value <= 1. abpc and the relative AUC subtract two such AUCs.
    tol = softmax_rel_error(2.0, 3, U32) + (2 * 10 + 13) * U32 * 1.01
    np.testing.assert_allclose(deletion_auc(model, x, a, y, n_steps=10, generator=g()).numpy(), p, atol=tol)
    np.testing.assert_allclose(insertion_auc(model, x, a, y, n_steps=10, generator=g()).numpy(), p, atol=tol)
    np.testing.assert_allclose(abpc(model, x, a, y, n_steps=10, generator=g()).numpy(), 0.0, atol=2 * tol)
    np.testing.assert_allclose(
        deletion_auc_relative(model, x, a, y, n_steps=10, generator=g()).numpy(), 0.0, atol=2 * tol
    )


def test_aucs_from_curves(standard_model, images, standard_saliency):
    # Each AUC recomputes the same curve (same images in the same batches, so the same model outputs on any
    # machine) and the same float32 trapezoid: equal by construction; 1e-6 (~16 float32 ulps of a value <= 1) and
    # 1e-7 only absorb kernel nondeterminism, were there any.
    x, y, a = images[0][:4], images[1][:4], standard_saliency[:4]
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    frac = (torch.arange(8) * 784 // 7) / 784  # n_steps=7 does not divide 784: x-axis = actual fraction removed
    base = torch.rand(x.shape, generator=g())

    def curve(order, mode, generator=None):
        return perturbation_curve(
            standard_model, x, a, y, order=order, mode=mode, baseline=base, n_steps=7, generator=generator
        )

    auc = lambda c: torch.trapezoid(c, frac, dim=1)  # noqa: E731
    np.testing.assert_allclose(
        deletion_auc(standard_model, x, a, y, n_steps=7, generator=g()).numpy(),
        auc(curve("morf", "deletion")).numpy(),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        curve_auc(curve("morf", "deletion"), n_features=784).numpy(), auc(curve("morf", "deletion")).numpy(), atol=1e-7
    )
    np.testing.assert_allclose(
        insertion_auc(standard_model, x, a, y, n_steps=7, generator=g()).numpy(),
        auc(curve("morf", "insertion")).numpy(),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        abpc(standard_model, x, a, y, n_steps=7, generator=g()).numpy(),
        (auc(curve("lerf", "deletion")) - auc(curve("morf", "deletion"))).numpy(),
        atol=1e-6,
    )
    gen = g()
    torch.rand(x.shape, generator=gen)  # the baseline is drawn first, then the random order
    expected = auc(curve("random", "deletion", gen)) - auc(curve("morf", "deletion"))
    np.testing.assert_allclose(
        deletion_auc_relative(standard_model, x, a, y, n_steps=7, generator=g()).numpy(), expected.numpy(), atol=1e-6
    )


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_constant_and_zero_attributions_give_finite_values(fill, standard_model, images):
    x, y = images[0][:3], images[1][:3]
    a = torch.full_like(x, fill)
    out = deletion_auc(standard_model, x, a, y, n_steps=8, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3,) and bool(torch.isfinite(out).all())
    # Constant maps rank pixels by index (row-major), as the stable sort promises.
    c = perturbation_curve(standard_model, x, a, y, order="morf", mode="deletion", baseline="black", n_steps=4)
    rowmajor = torch.arange(784, 0, -1, dtype=torch.float32).reshape(1, 1, 28, 28).expand_as(x)
    c2 = perturbation_curve(standard_model, x, rowmajor, y, order="morf", mode="deletion", baseline="black", n_steps=4)
    assert torch.equal(c, c2)


def test_nan_model_raises(images):
    x, y = images[0][:2], torch.zeros(2, dtype=torch.int64)
    with pytest.raises(ValueError, match="NaN or infinite logits"):
        deletion_auc(ConstantLogits([float("nan"), 0.0]), x, torch.rand(x.shape), y, n_steps=2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(order="best"), "order"),
        (dict(mode="delete"), "mode"),
        (dict(patch_size=5), "patch_size"),
        (dict(patch_size=0), "patch_size"),
        (dict(n_steps=0), "n_steps"),
        (dict(n_steps=785), "n_steps"),
        (dict(baseline="white"), "baseline"),
        (dict(baseline=torch.zeros(3, 28, 28)), "baseline"),
        (dict(batch_size=0), "batch_size"),
        (dict(generator=0), "generator"),
    ],
)
def test_bad_arguments_raise(kwargs, match, standard_model, images, standard_saliency):
    x, y, a = images[0][:2], images[1][:2], standard_saliency[:2]
    kw = {"order": "morf", "mode": "deletion", **kwargs}
    with pytest.raises(ValueError, match=match):
        perturbation_curve(standard_model, x, a, y, **kw)


def test_bad_inputs_raise(standard_model, images, standard_saliency):
    x, y, a = images[0][:2], images[1][:2], standard_saliency[:2]
    kw = dict(order="morf", mode="deletion")
    with pytest.raises(ValueError, match="target"):
        perturbation_curve(standard_model, x, a, y.int(), **kw)
    with pytest.raises(ValueError, match="target"):
        perturbation_curve(standard_model, x, a, torch.tensor([0, 10]), **kw)
    with pytest.raises(ValueError, match="attributions"):
        perturbation_curve(standard_model, x, a[:, :, :10], y, **kw)
    with pytest.raises(ValueError, match="attributions"):
        perturbation_curve(standard_model, x, a * float("nan"), y, **kw)
    with pytest.raises(ValueError, match="x"):
        perturbation_curve(standard_model, x[:, 0], a, y, **kw)
    with pytest.raises(ValueError, match="x contains NaN"):
        perturbation_curve(standard_model, x * float("nan"), a, y, **kw)
