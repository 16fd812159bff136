"""Infidelity: against Quantus's Infidelity (black and uniform baselines) and by hand."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import torch
from captum.metrics import infidelity as captum_infidelity

from metrics.functional import infidelity, infidelity_gaussian
from tests.metrics.conftest import LinearScore, record_numpy_random, run_quantus
from tests.metrics.rounding import (
    U32,
    U64,
    Float64,
    float64_per_image,
    gamma,
    logit_error_bound,
    metric_score_roundoff,
)

# Tolerances against Quantus. Both sides run the same float64 copy of the model (rounding.Float64) on bitwise-
# identical images, so every logit is within E = rounding.logit_error_bound of the exact one (any input in [0, 1],
# any summation order). Per (example, sample, k) the gap g_k = A_k - D_k (attribution-predicted minus actual drop)
# then differs between the two sides by at most
#   delta_k = (2 gamma_{n+P} u64 + u_x) T_k + 4 E + 2 u_s (|s_0| + |s_k| + |D_k|),
# with T_k = sum over the first k patches of |a (x - b)| (float64 sums on both sides; u_x = u32 for Quantus's float32
# x - baseline with a uniform baseline, else 0), u_s = rounding.metric_score_roundoff() for the stored scores and
# their subtraction on either side (float32 while metrics.functional._perturb stores scores in float32). So
# |INF_1 - INF_2| <= mean_k (2 |g_k| delta_k + delta_k^2) + the float64 means (gamma_{P+3} u64 INF each), with g, s
# and D recomputed here in float64 (patch_gaps). tests/metrics/test_devices.py uses it for CPU against CUDA.


def patch_gaps(model, x, a, y, patch, noise=None):
    """Float64 ``(N, S, P)`` gaps g_k and bounds T_k, scores ``(N, S, P + 1)`` of the cumulative patch images."""
    x, a, y = x.double().cpu(), a.double().cpu(), y.cpu()
    n, c, h, w = x.shape
    patch_id = (torch.arange(h)[:, None] // patch) * (w // patch) + torch.arange(w)[None, :] // patch
    n_patches = int(patch_id.max()) + 1
    x64 = x[:, None]
    base = torch.zeros_like(x64) if noise is None else noise.double().cpu()[:, :, patch_id][:, :, None]
    steps = torch.arange(n_patches + 1)[:, None, None] > patch_id  # (P + 1, H, W): patches 0..k-1 replaced
    images = torch.where(steps[None, None, :, None], base[:, :, None], x64[:, :, None])  # (N, S, P+1, C, H, W)
    with torch.no_grad():
        logits = Float64(model).cpu()(images.reshape(-1, c, h, w))
    s = logits.gather(1, y.repeat_interleave(images.shape[1] * images.shape[2])[:, None]).reshape(images.shape[:3])
    contrib = a[:, None] * (x64 - base)  # (N, S, C, H, W)
    one_hot = torch.nn.functional.one_hot(patch_id.flatten(), n_patches).double()
    per_patch = contrib.sum(2).flatten(2) @ one_hot
    t = (contrib.abs().sum(2).flatten(2) @ one_hot).cumsum(-1)
    return per_patch.cumsum(-1) - (s[..., :1] - s[..., 1:]), t, s


def infidelity_tolerance(model, x, a, y, patch, value, noise=None, u_x=0.0):
    """Per-example bound ``(N,)`` on the difference of two infidelities of about ``value`` (see above)."""
    g, t, s = patch_gaps(model, x, a, y, patch, noise)
    n_terms, n_patches = x[0].numel(), g.shape[-1]
    e = float(logit_error_bound(model, tuple(x.shape[1:])).error.max())
    u_s = metric_score_roundoff()
    drops = s[..., :1] - s[..., 1:]
    delta = (
        (2 * gamma(n_terms + n_patches, U64) + u_x) * t
        + 4 * e
        + 2 * u_s * (s[..., :1].abs() + s[..., 1:].abs() + drops.abs()) * (1 + 4 * u_s)
    )
    loss = (2 * g.abs() * delta + delta**2).mean(dim=(1, 2))
    return (loss + 2 * gamma(n_patches + 3, U64) * value.double().cpu().abs()).numpy()


def test_matches_quantus_black(standard_model, images, standard_saliency):
    x, y, a = images[0][:4], images[1][:4], standard_saliency[:4].double()
    metric = quantus.Infidelity(n_perturb_samples=1, perturb_baseline=0.0, disable_warnings=True)
    q = run_quantus(metric, Float64(standard_model), x, y, a)
    ours = infidelity(Float64(standard_model), x.double(), a, y)
    tol = infidelity_tolerance(standard_model, x, a, y, 4, ours)
    assert bool((tol < 1e-4 * ours.numpy()).all())  # relative to values of ~1e2: can still tell a wrong patch
    assert bool((np.abs(ours.numpy() - q) <= tol).all()), (ours.numpy() - q, tol)


def test_matches_quantus_uniform_with_its_noise(robust_model, images, robust_saliency):
    x, y, a = images[0][:4], images[1][:4], robust_saliency[:4].double()
    metric = quantus.Infidelity(
        n_perturb_samples=2, perturb_patch_sizes=[7], perturb_baseline="uniform", disable_warnings=True
    )
    with record_numpy_random("uniform") as draws:
        q = run_quantus(metric, Float64(robust_model), x, y, a)
    # Quantus writes its float64 draws into float32 images: the float32 values are the noise.
    noise = torch.from_numpy(np.stack(draws)).float().reshape(2, 16, 4).permute(2, 0, 1)  # (N, samples, patches)
    ours = infidelity(Float64(robust_model), x.double(), a, y, patch_size=7, noise=noise)
    tol = infidelity_tolerance(robust_model, x, a, y, 7, ours, noise=noise, u_x=U32)
    assert bool((tol < 1e-4 * ours.numpy()).all())
    assert bool((np.abs(ours.numpy() - q) <= tol).all()), (ours.numpy() - q, tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_linear_model_gradient_is_perfectly_faithful(dtype):
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(2, 8, 8, generator=g, dtype=dtype)
    x = torch.rand(3, 2, 8, 8, generator=g, dtype=dtype)
    target = torch.zeros(3, dtype=torch.int64)
    # Logit = w . x, so f(x) - f(x_k) = w . (x - x_k) exactly: the gradient w has zero infidelity, up to rounding.
    # Ours computes w . (x - x_k) in float64 (exact here: float32 or float64 values in [0, 1], error <= gamma_128
    # u64), the model each logit as a sum of 128 rounded products (<= gamma_128 u sum |w|, as every pixel of every
    # image, baseline included, lies in [0, 1]), and the drop as a difference of stored scores (u_s (|s_0| + |s_k| +
    # |D|) <= 3 u_s sum |w|). So each gap is <= delta and the infidelity, a mean of squared gaps, <= delta^2.
    u = U32 if dtype == torch.float32 else U64
    u_s = U32 if dtype == torch.float32 else metric_score_roundoff()
    delta = (2 * gamma(128, u) + gamma(128, U64)) * weight.abs().sum().item() + 3 * u_s * weight.abs().sum().item()
    delta *= 1 + 4 * u_s
    out = infidelity(LinearScore(weight), x, weight.expand_as(x), target, generator=g, baseline="uniform")
    assert out.dtype == dtype
    np.testing.assert_allclose(out.numpy(), 0.0, atol=delta**2)
    assert delta**2 < 1e-4  # far below the infidelity of wrong attributions:
    assert bool((infidelity(LinearScore(weight), x, torch.zeros_like(x), target) > 1.0).all())


def test_deterministic_baselines_ignore_n_samples_and_batching(standard_model, images, standard_saliency):
    # A per-image float64 model makes every score independent of the batch it is computed in, and the metric's own
    # float64 arithmetic is per example: the results below are equal by construction (rtol 1e-12 only absorbs
    # float64 kernel nondeterminism, were there any; a wrong index or sample count changes them by O(1)).
    model = float64_per_image(standard_model)
    x, y, a = images[0][:3].double(), images[1][:3], standard_saliency[:3].double()
    one = infidelity(model, x, a, y, patch_size=7, n_samples=1)
    assert one.dtype == torch.float64
    five = infidelity(model, x, a, y, patch_size=7, n_samples=5, batch_size=5)
    np.testing.assert_allclose(five.numpy(), one.numpy(), rtol=1e-12)
    single = torch.cat([infidelity(model, x[i : i + 1], a[i : i + 1], y[i : i + 1], patch_size=7) for i in range(3)])
    np.testing.assert_allclose(single.numpy(), one.numpy(), rtol=1e-12)
    # (N, 1, H, W) attributions broadcast like (N, C, H, W) ones.
    np.testing.assert_allclose(infidelity(model, x, a[:, 0], y, patch_size=7).numpy(), one.numpy(), rtol=1e-12)


def test_uniform_determinism(standard_model, images, standard_saliency):
    x, y, a = images[0][:2], images[1][:2], standard_saliency[:2]
    run = lambda seed: infidelity(  # noqa: E731
        standard_model,
        x,
        a,
        y,
        patch_size=14,
        n_samples=3,
        baseline="uniform",  # noqa: E731
        generator=torch.Generator().manual_seed(seed),
    )
    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


def test_bad_arguments_raise(standard_model, images, standard_saliency):
    x, y, a = images[0][:2], images[1][:2], standard_saliency[:2]
    with pytest.raises(ValueError, match="patch_size"):
        infidelity(standard_model, x, a, y, patch_size=5)
    with pytest.raises(ValueError, match="noise"):
        infidelity(standard_model, x, a, y, noise=torch.rand(2, 3, 5))
    with pytest.raises(ValueError, match="n_samples"):
        infidelity(standard_model, x, a, y, n_samples=0)


# Yeh et al.'s Gaussian estimator (infidelity_gaussian): captum.metrics.infidelity on the same perturbations, and
# closed forms for a linear score f(x) = w . x (LinearScore, target 0).


def _gaussian(shape, seed, sigma=0.2, dtype=torch.float64):
    return sigma * torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("optimal_scaling", [False, True])
def test_gaussian_matches_captum(optimal_scaling, standard_model, images, standard_saliency):
    model = Float64(standard_model)
    x, y, a = images[0][:4].double(), images[1][:4], standard_saliency[:4].double()
    n_samples = 8
    noise = _gaussian((4, n_samples, 1, 28, 28), seed=0)
    flat = noise.reshape(-1, 1, 28, 28)  # captum repeats each example n_perturb_samples times, example-major

    def perturb(inputs):
        return flat, inputs - flat

    expected = captum_infidelity(
        model, perturb, x, a, target=y, n_perturb_samples=n_samples, normalize=optimal_scaling
    ).numpy()
    ours = infidelity_gaussian(model, x, a, y, perturbations=noise, optimal_scaling=optimal_scaling)
    assert ours.dtype == torch.float64
    # Bound (float64 on both sides, the same images x - I bit for bit): per sample, a . I differs by at most
    # e_P = 2 gamma_784 u64 sum |a I| (any summation order), each drop D by 4 E (E = rounding.logit_error_bound over
    # the box holding every x - I), so each gap g = beta a.I - D by delta = |beta| e_P + 4 E (beta's own error
    # moves the optimally scaled loss only to second order: d loss / d beta = 0 there) and the loss by
    # mean(2 |g| delta + delta^2); captum's normalised loss is the expansion beta^2 A - 2 beta B + C, which rounds
    # to within 8 u64 (beta^2 A + 2 |beta B| + C) / S.
    with torch.no_grad():
        images_ = (x[:, None] - noise).reshape(-1, 1, 28, 28)
        moved = model(images_).gather(1, y.repeat_interleave(n_samples)[:, None]).reshape(4, n_samples)
        drop = model(x).gather(1, y[:, None]) - moved
    pred = (a[:, None] * noise).sum(dim=(2, 3, 4))
    big_a, big_b, big_c = pred.square().sum(1), (pred * drop).sum(1), drop.square().sum(1)
    beta = big_b / big_a if optimal_scaling else torch.ones(4, dtype=torch.float64)
    e = float(
        logit_error_bound(standard_model, (1, 28, 28), lo=float(images_.min()), hi=float(images_.max())).error.max()
    )
    delta = beta.abs()[:, None] * 2 * gamma(784, U64) * (a[:, None] * noise).abs().sum(dim=(2, 3, 4)) + 4 * e
    gap = beta[:, None] * pred - drop
    tol = (2 * gap.abs() * delta + delta**2).mean(1)
    if optimal_scaling:
        tol += 8 * U64 * (beta**2 * big_a + 2 * (beta * big_b).abs() + big_c) / n_samples
    assert bool((tol < 1e-5 * ours).all())  # tight enough to catch a wrong sample, scale or sign
    assert bool((np.abs(ours.numpy() - expected) <= tol.numpy()).all()), (ours.numpy() - expected, tol)
    # Optimal scaling minimises over beta: never above the unscaled estimate on the same perturbations.
    if optimal_scaling:
        unscaled = infidelity_gaussian(model, x, a, y, perturbations=noise, optimal_scaling=False)
        assert bool((ours <= unscaled + tol).all())


def _linear_case(seed=0, n=3):
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(2, 8, 8, generator=g, dtype=torch.float64)
    x = torch.rand(n, 2, 8, 8, generator=g, dtype=torch.float64)
    return LinearScore(weight), weight, x, torch.zeros(n, dtype=torch.int64)


def test_gaussian_closed_forms_of_a_linear_score():
    model, w, x, target = _linear_case()
    noise = _gaussian((3, 50, 2, 8, 8), seed=1)
    w_dot_i = (w * noise).sum(dim=(2, 3, 4))  # (N, S), float64
    # a = w (the gradient, not times x): f(x) - f(x - I) = w . I = a . I, so every term is 0 up to rounding: the
    # model's two sums of 128 products and ours of a . I each within gamma_128 u64 sum |w| (|x| + |I|), and the
    # subtraction x - I within u64 |x - I|: gaps <= delta, the mean of their squares <= delta^2.
    delta = 4 * gamma(129, U64) * float((w.abs() * (x.abs()[:, None] + noise.abs())).sum(dim=(2, 3, 4)).max())
    for scaling in (False, True):
        out = infidelity_gaussian(model, x, w.expand_as(x), target, perturbations=noise, optimal_scaling=scaling)
        np.testing.assert_allclose(out.numpy(), 0.0, atol=delta**2)
    # a = 3 w: unscaled, each gap is 2 w . I; optimal scaling (beta = 1/3) recovers 0.
    three = 3 * w.expand_as(x)
    out = infidelity_gaussian(model, x, three, target, perturbations=noise, optimal_scaling=False)
    np.testing.assert_allclose(out.numpy(), (4 * w_dot_i.square().mean(1)).numpy(), rtol=1e-9)
    out = infidelity_gaussian(model, x, three, target, perturbations=noise, optimal_scaling=True)
    np.testing.assert_allclose(out.numpy(), 0.0, atol=(3 * delta) ** 2)
    # a = 0: mean_s (w . I_s)^2 with either setting (beta = 0 where a . I = 0 for every sample).
    for scaling in (False, True):
        out = infidelity_gaussian(model, x, torch.zeros_like(x), target, perturbations=noise, optimal_scaling=scaling)
        np.testing.assert_allclose(out.numpy(), w_dot_i.square().mean(1).numpy(), rtol=1e-9)


def test_gaussian_zero_attributions_expectation_and_draws():
    # E[(w . I)^2] = sigma^2 |w|^2; (w . I)^2 / (sigma^2 |w|^2) ~ chi^2_1 (variance 2), so the mean of S samples has
    # relative standard deviation sqrt(2 / S) = 1% at S = 20000: 5% is 5 standard deviations.
    model, w, x, target = _linear_case(seed=2)
    sigma, n_samples = 0.3, 20000
    out = infidelity_gaussian(
        model,
        x,
        torch.zeros_like(x),
        target,
        sigma=sigma,
        n_samples=n_samples,
        generator=torch.Generator().manual_seed(3),
        batch_size=8192,
    )
    np.testing.assert_allclose(out.numpy(), sigma**2 * float(w.square().sum()), rtol=0.05)
    # The documented draws: sigma * randn((N, S, C, H, W)) (N <= 64), the same for any batch size.
    noise = _gaussian((3, 7, 2, 8, 8), seed=4, sigma=sigma)
    drawn = infidelity_gaussian(
        model,
        x,
        w.expand_as(x) * x,
        target,
        sigma=sigma,
        n_samples=7,
        batch_size=5,
        generator=torch.Generator().manual_seed(4),
    )
    given = infidelity_gaussian(model, x, w.expand_as(x) * x, target, perturbations=noise)
    np.testing.assert_allclose(drawn.numpy(), given.numpy(), rtol=1e-12)
    assert bool((given > 0).all())  # gradient x input is not the linear score's exact explanation


def test_gaussian_batching_and_broadcast(standard_model, images, standard_saliency):
    model = float64_per_image(standard_model)  # per-image scores: equal whatever the batch, by construction
    x, y, a = images[0][:3].double(), images[1][:3], standard_saliency[:3].double()
    noise = _gaussian((3, 4, 1, 28, 28), seed=5)
    full = infidelity_gaussian(model, x, a, y, perturbations=noise)
    small = infidelity_gaussian(model, x, a, y, perturbations=noise, batch_size=3)
    single = torch.cat(
        [
            infidelity_gaussian(model, x[i : i + 1], a[i : i + 1], y[i : i + 1], perturbations=noise[i : i + 1])
            for i in range(3)
        ]
    )
    np.testing.assert_allclose(small.numpy(), full.numpy(), rtol=1e-12)
    np.testing.assert_allclose(single.numpy(), full.numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        infidelity_gaussian(model, x, a[:, 0], y, perturbations=noise).numpy(), full.numpy(), rtol=1e-12
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(sigma=0.0), "sigma"),
        (dict(sigma=float("inf")), "sigma"),
        (dict(n_samples=0), "n_samples"),
        (dict(perturbations=torch.zeros(2, 3, 1, 28)), "perturbations"),
        (dict(perturbations=torch.full((2, 3, 1, 28, 28), float("nan"))), "perturbations"),
        (dict(batch_size=0), "batch_size"),
        (dict(generator=0), "generator"),
    ],
)
def test_gaussian_bad_arguments_raise(kwargs, match, standard_model, images, standard_saliency):
    x, y, a = images[0][:2], images[1][:2], standard_saliency[:2]
    with pytest.raises(ValueError, match=match):
        infidelity_gaussian(standard_model, x, a, y, **kwargs)
