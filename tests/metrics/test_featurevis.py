"""Feature visualisation (metrics.featurevis): the penultimate representation, representation inversion,
class-conditional generation and their scores, on the shipped gap-cnn models and on hand-built cases."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.data import load_examples
from metrics.featurevis import generation, inversion, representation, scores
from metrics.featurevis.generation import ClassGaussians, class_seeds, fit_class_gaussians, generate, target_logit
from metrics.featurevis.inversion import inversion_loss, invert, noise_seeds, other_image_seeds
from metrics.featurevis.representation import RepresentationUnavailable, representation_fn
from metrics.featurevis.scores import PSNR_MAX_DB, encode, encoder_distance, fid, judge_accuracy, psnr, ssim
from tests.metrics.rounding import U32, Float64, PerImage, gamma

N_TARGETS = 8
INVERSION_STEPS = 100  # the default cap is 2000; 100 already shows every property tested here (~1.6 s per run, 1 CPU)


def _ball_slack(eps: float, n: int) -> float:
    """How far past ``eps`` a float32 projection onto the L2 ball can land, as measured by a float32 norm: the
    scaling ``delta * eps / ||delta||`` uses a norm of n terms (relative error <= gamma_n u32), a division and a
    product (2 u32); ``seed + delta`` rounds each value (<= u32 (1 + |delta_i|), sqrt(n) u32 + u32 eps in L2);
    clamping to [0, 1] only moves towards the seed; the test's own norm adds gamma_n u32 and its subtraction u32.
    In all <= eps (2 gamma_n + 5 u32) + sqrt(n) u32 to first order; twice the non-gamma terms for the rest."""
    return eps * (2 * gamma(n, U32) + 10 * U32) + 2 * n**0.5 * U32


# --- representation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["standard", "robust"])
def test_gap_cnn_representation_is_pooled_features(which, request, images):
    model = request.getfixturevalue(f"{which}_model")
    x = images[0][:6]
    fn, how = representation_fn(model)
    assert how == "forward hook on the input of classifier (nn.Linear 128 -> 10)"
    rep = fn(x)
    with torch.no_grad():
        expected = model.pool(model.features(x))
    assert rep.shape == (6, 128)
    # The same modules on the same batch (the hook only records): the same kernels, equal results on any machine.
    torch.testing.assert_close(rep.detach(), expected, rtol=0, atol=0)
    assert not model.classifier._forward_pre_hooks  # the hook is removed after each call
    # the function keeps the graph: same input gradient as through pool(features(x))
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    (ga,) = torch.autograd.grad(fn(xa).pow(2).sum(), xa)
    (gb,) = torch.autograd.grad(model.pool(model.features(xb)).pow(2).sum(), xb)
    assert ga.abs().max() > 0
    # The same backward graph on the same batch: equal by construction; the tolerance only absorbs nondeterminism.
    torch.testing.assert_close(ga, gb, rtol=1e-5, atol=1e-7)


class _WithRepresentation(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(4, 2)

    def representation(self, x: torch.Tensor) -> torch.Tensor:
        return 3.0 * x.flatten(1)[:, :3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.flatten(1))


class _Wrapper(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.model = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class _SubmoduleNamedRepresentation(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.representation = nn.Sequential(nn.Flatten(), nn.Linear(4, 5), nn.ReLU())
        self.head = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.representation(x))


def test_representation_method_is_preferred():
    x = torch.arange(8.0).view(2, 1, 2, 2)
    fn, how = representation_fn(_WithRepresentation())
    assert how == "model.representation(x)"
    torch.testing.assert_close(fn(x), torch.tensor([[0.0, 3.0, 6.0], [12.0, 15.0, 18.0]]))
    fn, how = representation_fn(_Wrapper(_WithRepresentation()))
    assert how == "model.model.representation(x) (wrapped model)"
    torch.testing.assert_close(fn(x), torch.tensor([[0.0, 3.0, 6.0], [12.0, 15.0, 18.0]]))


def test_submodule_named_representation_falls_back_to_the_hook():
    torch.manual_seed(0)
    model = _SubmoduleNamedRepresentation()
    x = torch.rand(3, 1, 2, 2)
    fn, how = representation_fn(model)
    assert how == "forward hook on the input of head (nn.Linear 5 -> 2)"
    torch.testing.assert_close(fn(x), model.representation(x), rtol=0, atol=0)


def test_no_linear_layer_is_unavailable_with_a_reason():
    model = nn.Sequential(nn.Conv2d(1, 10, 28), nn.Flatten())
    with pytest.raises(RepresentationUnavailable) as info:
        representation_fn(model)
    assert "no representation(x) method" in info.value.reason and "no nn.Linear" in info.value.reason
    assert str(info.value) == info.value.reason


def test_linear_that_never_runs_is_unavailable_when_called():
    class Unused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.spare = nn.Linear(3, 3)

        def forward(self, x):
            return self.conv(x).mean(dim=(2, 3))

    fn, how = representation_fn(Unused())
    with pytest.raises(RepresentationUnavailable, match="did not run"):
        fn(torch.rand(2, 1, 5, 5))


def test_representation_method_with_wrong_shape_is_unavailable():
    class Bad(_WithRepresentation):
        def representation(self, x):
            return x.flatten()[:5]

    fn, _ = representation_fn(Bad())
    with pytest.raises(RepresentationUnavailable, match="not \\(N, D\\)"):
        fn(torch.rand(2, 1, 2, 2))


# --- inversion --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def targets(images):
    return images[0][:N_TARGETS], images[1][:N_TARGETS]


@pytest.fixture(scope="module")
def seeds(targets):
    x, y = targets
    return {
        "other": other_image_seeds(x, y)[0],
        "noise": noise_seeds(x.shape, generator=torch.Generator().manual_seed(0)),
    }


@pytest.fixture(scope="module")
def inverted(request, targets, seeds):
    """``inverted(which, seed_kind) -> (rep_fn, seed, inversion)``, each inversion run once per module."""
    cache = {}

    def get(which: str, kind: str):
        if (which, kind) not in cache:
            fn, _ = representation_fn(request.getfixturevalue(f"{which}_model"))
            # tol=0: every image takes all 100 steps (the convergence rule: tests/metrics/featurevis/test_inversion.py)
            inv = invert(fn, targets[0], seeds[kind], steps=INVERSION_STEPS, tol=0.0)
            assert inv.steps.tolist() == [INVERSION_STEPS] * N_TARGETS
            cache[which, kind] = fn, seeds[kind], inv.images
        return cache[which, kind]

    return get


@pytest.mark.parametrize("which", ["standard", "robust"])
@pytest.mark.parametrize("kind", ["other", "noise"])
def test_inversion_lowers_the_loss(which, kind, inverted, targets):
    fn, seed, inv = inverted(which, kind)
    before, after = inversion_loss(fn, seed, targets[0]), inversion_loss(fn, inv, targets[0])
    assert before.shape == after.shape == (N_TARGETS,)
    assert bool((before > 0.3).all())  # the seeds start far from the targets' representations (observed >= 0.46)
    # observed: after / before <= 0.76 for every image, with AVX-512, SSE4.1 or default kernels and in float64
    assert bool((after < 0.8 * before).all())
    assert float(inv.min()) >= 0.0 and float(inv.max()) <= 1.0
    torch.testing.assert_close(inversion_loss(fn, targets[0], targets[0]), torch.zeros(N_TARGETS))


def test_robust_inversion_resembles_the_target(inverted, targets):
    x = targets[0]
    _, seed, inv = inverted("robust", "other")
    before, after = ssim(seed, x), ssim(inv, x)
    # Normalised-gradient inversion is chaotic: rounding differences of the float32 kernels (DNNL_MAX_CPU_ISA=SSE41
    # instead of AVX-512) change the inverted images by up to 1.0 per pixel after 100 steps, so per-image outcomes
    # are not a property of the method. Observed with AVX-512, SSE4.1 and default ATen kernels and in float64: 7 or
    # 8 of the 8 images gain, by 0.089 to 0.117 on average.
    assert int((after > before).sum()) >= 6
    assert float(after.mean() - before.mean()) > 0.05
    _, seed, inv = inverted("robust", "noise")
    assert float(ssim(inv, x).mean()) > float(ssim(seed, x).mean())  # observed 0.062 vs 0.029


def test_robust_inversion_resembles_more_than_standard(inverted, targets):
    """Engstrom et al.'s point: inverting a robust representation recovers more of the image."""
    x = targets[0]
    gains = {}
    for which in ("standard", "robust"):
        _, seed, inv = inverted(which, "other")
        gains[which] = float(ssim(inv, x).mean() - ssim(seed, x).mean())
    assert gains["robust"] > gains["standard"] + 0.03  # observed 0.096 vs 0.007


def test_inversion_does_not_depend_on_batch_size(robust_model, targets, seeds):
    # A float32 model's representation depends on the batch in its last bits (kernels chosen by batch size), which 20
    # normalised steps can amplify. A per-image float64 model removes that: the examples are then computed
    # identically in any chunk, so the results are equal by construction (1e-12 only absorbs float64 kernel
    # nondeterminism, were there any).
    fn, _ = representation_fn(Float64(robust_model))
    x_target, x_seed = targets[0][:4].double(), seeds["noise"][:4].double()
    # window 5, tol 0.05: some images stop before the cap (their chunk runs on without them)
    whole = invert(PerImage(fn), x_target, x_seed, steps=20, window=5, tol=0.05)
    chunked = invert(PerImage(fn), x_target, x_seed, steps=20, window=5, tol=0.05, batch_size=3)
    assert whole.images.dtype == torch.float64
    torch.testing.assert_close(chunked.images, whole.images, rtol=0, atol=1e-12)
    assert chunked.steps.tolist() == whole.steps.tolist()
    assert min(whole.steps.tolist()) < 20  # observed steps 10, 20, 15, 15: the rule stopped some images early


@pytest.mark.parametrize("eps", [0.5, 2.0])
def test_inversion_stays_in_the_eps_ball(eps, robust_model, targets, seeds):
    fn, _ = representation_fn(robust_model)
    seed = seeds["other"]
    inv = invert(fn, targets[0], seed, steps=20, eps=eps, tol=0.0).images
    dist = (inv - seed).flatten(1).norm(dim=1)
    assert bool((dist <= eps + _ball_slack(eps, seed[0].numel())).all())
    assert float(dist.max()) > 0.9 * eps  # 20 steps of length 1 would go much further: the ball binds
    assert float(inv.min()) >= 0.0 and float(inv.max()) <= 1.0
    assert float(inversion_loss(fn, inv, targets[0]).mean()) < float(inversion_loss(fn, seed, targets[0]).mean())


def test_other_image_seeds_pick_another_class(targets):
    x, y = targets
    seed, index = other_image_seeds(x, y)
    assert bool((y[index] != y).all())  # the first 8 test images span 5 classes
    torch.testing.assert_close(seed, x[index], rtol=0, atol=0)
    # the nearest following index of another class, cyclically
    z = torch.arange(5.0).view(5, 1, 1, 1)
    assert other_image_seeds(z, torch.tensor([0, 0, 0, 1, 0]))[1].tolist() == [3, 3, 3, 4, 3]
    assert other_image_seeds(z, torch.tensor([2, 2, 2, 2, 2]))[1].tolist() == [1, 2, 3, 4, 0]  # impossible: next


def test_noise_seeds_range_and_determinism():
    a = noise_seeds((4, 1, 28, 28), amplitude=0.1, generator=torch.Generator().manual_seed(3))
    b = noise_seeds((4, 1, 28, 28), amplitude=0.1, generator=torch.Generator().manual_seed(3))
    c = noise_seeds((4, 1, 28, 28), amplitude=0.1, generator=torch.Generator().manual_seed(4))
    assert a.shape == (4, 1, 28, 28)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0.4 and float(a.max()) <= 0.6
    assert float(a.min()) < 0.41 and float(a.max()) > 0.59  # the whole range is used
    assert abs(float(a.mean()) - 0.5) < 0.005  # 3136 draws of sd 0.058: the mean's sd is 0.001 (a statistical check)


# --- generation -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def train_images(data_dir):
    return load_examples("fashion-mnist", split="train", n=500, data_dir=data_dir)


@pytest.fixture(scope="module")
def gaussians(train_images):
    return fit_class_gaussians(*train_images, num_classes=10)


def test_fit_class_gaussians_by_hand(train_images, gaussians):
    x, y = train_images
    small = x.double().view(500, 1, 7, 4, 7, 4).mean(dim=(3, 5)).flatten(1)  # 4x4 block means
    assert gaussians.shape == (1, 7, 7) and gaussians.num_classes == 10
    assert gaussians.counts.tolist() == torch.bincount(y, minlength=10).tolist()
    # Fitted in float64 and stored in float32: the mean is off by <= u32 (values in [0, 1]); tril @ tril.T by <=
    # 2 u32 sum_k |L_ik L_jk| <= 2 u32 max C_ii ~ 3e-8 (entries <= 0.25 + 1e-4), plus a float64 Cholesky's ~1e-15.
    for k in range(10):
        xk = small[y == k].numpy()
        np.testing.assert_allclose(gaussians.mean[k].numpy(), xk.mean(axis=0), rtol=0, atol=1e-6)
        cov = np.cov(xk, rowvar=False, ddof=0) + 1e-4 * np.eye(49)
        tril = gaussians.scale_tril[k].double()
        np.testing.assert_allclose((tril @ tril.T).numpy(), cov, rtol=0, atol=1e-6)
        assert bool((torch.triu(tril, diagonal=1) == 0).all())


def test_class_seeds(gaussians):
    target = torch.arange(20) % 10
    a = class_seeds(gaussians, target, size=(28, 28), generator=torch.Generator().manual_seed(0))
    b = class_seeds(gaussians, target, size=(28, 28), generator=torch.Generator().manual_seed(0))
    c = class_seeds(gaussians, target, size=(28, 28), generator=torch.Generator().manual_seed(1))
    assert a.shape == (20, 1, 28, 28)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_class_seeds_with_zero_covariance_are_the_upsampled_class_mean():
    mean = torch.tensor([[0.25] * 4, [0.2, 0.4, 0.6, 0.8]])
    g = ClassGaussians(mean=mean, scale_tril=torch.zeros(2, 4, 4), shape=(1, 2, 2), counts=torch.tensor([2, 2]))
    out = class_seeds(g, torch.tensor([0, 1, 1]), size=(6, 6), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out[0], torch.full((1, 6, 6), 0.25))
    expected = F.interpolate(mean[1].view(1, 1, 2, 2), size=(6, 6), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(out[1], expected)
    torch.testing.assert_close(out[2], expected)
    # bilinear upsampling keeps the corner blocks' values and interpolates in between
    assert out[1, 0, 0, 0].item() == pytest.approx(0.2) and out[1, 0, 5, 5].item() == pytest.approx(0.8)


def test_generation_raises_the_target_logit(robust_model, gaussians):
    target = torch.arange(16) % 10
    seed = class_seeds(gaussians, target, size=(28, 28), generator=torch.Generator().manual_seed(0))
    out = generate(robust_model, seed, target)
    before, after = target_logit(robust_model, seed, target), target_logit(robust_model, out, target)
    assert bool((after > before).all())
    assert float((after - before).mean()) > 2.0  # observed ~6 on 64 images
    with torch.no_grad():
        assert float((robust_model(out).argmax(dim=1) == target).float().mean()) >= 0.9
    assert bool(((out - seed).flatten(1).norm(dim=1) <= 15.0 + _ball_slack(15.0, seed[0].numel())).all())
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_generation_stays_in_the_eps_ball(robust_model, gaussians):
    target = torch.tensor([0, 3, 5, 7, 8, 9])
    seed = class_seeds(gaussians, target, size=(28, 28), generator=torch.Generator().manual_seed(1))
    out = generate(robust_model, seed, target, steps=15, eps=1.0)
    dist = (out - seed).flatten(1).norm(dim=1)
    slack = _ball_slack(1.0, seed[0].numel())
    assert bool((dist <= 1.0 + slack).all()) and float(dist.max()) > 0.9  # 15 steps of 0.25 reach the boundary
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert bool((target_logit(robust_model, out, target) > target_logit(robust_model, seed, target)).all())


def test_generation_does_not_depend_on_batch_size(robust_model, gaussians):
    # As for inversion: a per-image float64 model makes every example's steps independent of its chunk.
    target = torch.tensor([0, 3, 5, 7, 9])
    seed = class_seeds(gaussians, target, size=(28, 28), generator=torch.Generator().manual_seed(1)).double()
    model = PerImage(Float64(robust_model))
    out = generate(model, seed, target, steps=10, eps=1.0)
    chunked = generate(model, seed, target, steps=10, eps=1.0, batch_size=2)
    assert out.dtype == torch.float64
    torch.testing.assert_close(chunked, out, rtol=0, atol=1e-12)


def test_target_logit_by_hand():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 0, -1.0]]))
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, 0.5, 0.5, 0.5]]).view(2, 1, 2, 2)
    torch.testing.assert_close(target_logit(model, x, torch.tensor([1, 2])), torch.tensor([4.0, -0.5]))


# --- scores -----------------------------------------------------------------------------------------------------


def _features(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) @ torch.randn(d, d, generator=g, dtype=torch.float64)


FID_METHODS = ["eigvals", "sqrtm"]


def _fid_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Independent of both methods: Tr((S_a S_b)^(1/2)) = Tr((S_a^(1/2) S_b S_a^(1/2))^(1/2)), symmetric eigh only."""
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(sa)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ sb @ root_a), 0, None)).sum()
    d = a.mean(0) - b.mean(0)
    return float(d @ d + np.trace(sa) + np.trace(sb) - 2 * tr_covmean)


@pytest.mark.parametrize("method", FID_METHODS)
def test_fid_identical_and_mean_shift(method):
    # float64 throughout: the eigenvalues (or sqrtm) of S S are accurate to ~n u64 ||S||^2, so FID(f, f) and the
    # shifts below are exact to ~1e-12 for these well-conditioned 6x6 covariances; 1e-6 is a generous margin.
    f = _features(300, 6, 0)
    assert abs(fid(f, f, method=method)) < 1e-6
    shift = torch.tensor([0.3, -1.0, 0.0, 2.0, 0.5, 0.1], dtype=torch.float64)
    # same covariance: the trace term vanishes and FID = ||mu_a - mu_b||^2
    assert fid(f, f + shift, method=method) == pytest.approx(float(shift @ shift), rel=1e-6, abs=1e-6)
    values = [fid(f, f + s * shift, method=method) for s in (0.0, 0.25, 0.5, 1.0, 2.0)]
    assert all(b > a for a, b in zip(values, values[1:], strict=False))
    assert values[-1] == pytest.approx(4 * float(shift @ shift), rel=1e-6)


@pytest.mark.parametrize("method", FID_METHODS)
def test_fid_one_dimensional_by_hand(method):
    g = torch.Generator().manual_seed(1)
    a = torch.randn(50, 1, generator=g, dtype=torch.float64) * 2.0 + 1.0
    b = torch.randn(80, 1, generator=g, dtype=torch.float64) * 0.5 - 0.5
    an, bn = a.numpy()[:, 0], b.numpy()[:, 0]
    s1, s2 = an.std(ddof=1), bn.std(ddof=1)
    expected = (an.mean() - bn.mean()) ** 2 + s1**2 + s2**2 - 2 * s1 * s2
    assert fid(a, b, method=method) == pytest.approx(expected, rel=1e-9)  # float64, a 1x1 case: ~1e-15
    # float32 features (relative error <= u32 each) move the means and deviations by <= u32 * 3 (|values| <~ 3 on
    # average), so FID = (mu_a - mu_b)^2 + (s_a - s_b)^2 ~ 4.5 by <= 4 * 1.5 * 3 u32 ~ 1e-6: relative 3e-7 < 1e-5.
    assert fid(a.float(), b.float(), method=method) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("method", FID_METHODS)
def test_fid_matches_an_independent_reference(method):
    a, b = _features(400, 5, 2), _features(300, 5, 3) + 0.7
    expected = _fid_reference(a.numpy(), b.numpy())
    assert expected > 1.0  # float64 eigen-solvers on 5x5 well-conditioned matrices: agreement to ~1e-12, rel 1e-6
    assert fid(a, b, method=method) == pytest.approx(expected, rel=1e-6)
    assert fid(b, a, method=method) == pytest.approx(expected, rel=1e-6)


def test_fid_methods_agree_on_model_features(robust_model, standard_model, fmnist_test):
    x = fmnist_test[0][:48]
    fa, _ = representation_fn(robust_model)
    fb, _ = representation_fn(standard_model)
    with torch.no_grad():
        a, b = fa(x), fb(x)
    dims = torch.minimum(a.var(dim=0), b.var(dim=0)).argsort(descending=True)[:16]  # 48 samples, 16 live units
    a, b = a[:, dims], b[:, dims]
    assert bool((a.var(dim=0) > 0.1).all() and (b.var(dim=0) > 0.1).all())
    value = fid(a, b, method="eigvals")
    assert value > 1.0  # the same float64 features for every method: algorithms agree to ~1e-12 relative, rel 1e-6
    assert value == pytest.approx(fid(a, b, method="sqrtm"), rel=1e-6)
    assert value == pytest.approx(_fid_reference(a.double().numpy(), b.double().numpy()), rel=1e-6)


@pytest.mark.parametrize("method", FID_METHODS)
def test_fid_with_fewer_samples_than_dimensions_stays_finite(method):
    # Rank-4 covariances: "sqrtm" adds eps * I = 1e-6 I to both, which makes FID(f, f) = -2 * 10 * 1e-6 = -2e-5;
    # "eigvals" clips the rounding noise of the 6 zero eigenvalues (sqrt(n u64) ||S|| ~ 1e-7 each). |.| < 1e-4.
    f = torch.randn(5, 10, generator=torch.Generator().manual_seed(0))
    assert abs(fid(f, f, method=method)) < 1e-4
    assert fid(f, f + 1.0, method=method) == pytest.approx(10.0, abs=1e-4)


def test_ssim_properties(images):
    x = images[0][:4]
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ssim(x, x), torch.ones(4))  # float64 inside: 1 to ~1e-15, then float32
    y = (x + 0.1 * noise).clamp(0, 1)
    # A symmetric float64 formula (products and sums commute exactly): equal; atol covers one float32 rounding flip.
    torch.testing.assert_close(ssim(x, y), ssim(y, x), rtol=0, atol=1e-7)
    levels = [ssim(x, (x + s * noise).clamp(0, 1)) for s in (0.0, 0.02, 0.05, 0.1, 0.2, 0.4)]
    for a, b in zip(levels, levels[1:], strict=False):
        assert bool((b < a).all())
    # invariant to the unit: scaling both images and data_range by 255 changes nothing. 255 * x is exact in float64
    # (24 + 8 bits), the float64 SSIMs then differ by ~1e-15, and the float32 results by <= one rounding (u32).
    scaled = ssim(255 * x.double(), 255 * y.double(), data_range=255.0)
    torch.testing.assert_close(scaled, ssim(x, y), rtol=0, atol=U32 + 1e-12)


def test_ssim_matches_skimage(images):
    metrics_mod = pytest.importorskip("skimage.metrics")
    x = images[0][:4]
    g = torch.Generator().manual_seed(1)
    pairs = [
        (x, (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)),
        (x, images[0][4:8]),
        (torch.rand(2, 3, 20, 17, generator=g), torch.rand(2, 3, 20, 17, generator=g)),  # channels averaged
    ]
    for a, b in pairs:
        ours = ssim(a, b)
        ref = [
            metrics_mod.structural_similarity(
                a[i].double().numpy(),
                b[i].double().numpy(),
                channel_axis=0,
                data_range=1.0,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
            for i in range(len(a))
        ]
        # Both in float64 (differences ~1e-15 from the filters), ours then rounded to float32 (<= u32 for |SSIM| <= 1).
        np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=U32 + 1e-12)


def test_psnr_by_hand():
    a = torch.zeros(3, 1, 4, 4)
    b = a.clone()
    b[0] += 0.1  # MSE 0.01 -> 20 dB
    b[1, 0, :2] = 0.2  # half the pixels off by 0.2: MSE 0.02 -> 10 log10(50)
    out = psnr(a, b)
    # 0.1 and 0.2 are float32 (relative error <= u32): PSNR moves by <= 20 log10(1 + u32) ~ 5e-7 dB, inside the
    # default float32 tolerance (rtol 1.3e-6).
    torch.testing.assert_close(out, torch.tensor([20.0, 10 * np.log10(50.0), PSNR_MAX_DB], dtype=torch.float32))
    assert PSNR_MAX_DB == 100.0
    torch.testing.assert_close(psnr(2 * a, 2 * b, data_range=2.0), out)


def test_judge_accuracy_by_hand():
    judge = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False))
    with torch.no_grad():
        judge[1].weight.copy_(torch.eye(3, 4))  # logits = the first three pixels
    x = torch.tensor([[0.9, 0.1, 0.0, 1.0], [0.0, 0.5, 0.2, 0.0], [0.1, 0.2, 0.3, 0.0], [0.3, 0.2, 0.1, 0.0]])
    x = x.view(4, 1, 2, 2)  # argmax: 0, 1, 2, 0
    target = torch.tensor([0, 2, 2, 1])
    torch.testing.assert_close(judge_accuracy(judge, x, target), torch.tensor([1.0, 0.0, 1.0, 0.0]))
    torch.testing.assert_close(judge_accuracy(judge, x, target, batch_size=1), torch.tensor([1.0, 0.0, 1.0, 0.0]))


def test_encoder_distance_by_hand():
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    g = torch.Generator().manual_seed(2)
    a, b = torch.rand(7, 3, 2, 2, generator=g), torch.rand(7, 3, 2, 2, generator=g)
    torch.testing.assert_close(encoder_distance(encoder, a, a), torch.zeros(7))
    w = encoder[1].weight.detach().double()
    expected = np.linalg.norm((a - b).flatten(1).double().numpy() @ w.numpy().T, axis=1)  # the bias cancels
    # float32: each feature (12 products and the bias) errs by <= gamma_13 u32 (|W| |x| + |bias|), the difference of
    # the two and the norm of 5 add u32 and gamma_5 u32 relative; any summation order (batch_size) obeys this.
    bias = encoder[1].bias.detach().double().abs()
    err = gamma(13, U32) * (
        a.double().flatten(1).abs() @ w.abs().T + b.double().flatten(1).abs() @ w.abs().T + 2 * bias
    )
    rtol = float((err.norm(dim=1) / torch.from_numpy(expected)).max()) * (1 + U32) + gamma(6, U32)
    assert rtol < 1e-4
    np.testing.assert_allclose(encoder_distance(encoder, a, b).numpy(), expected, rtol=rtol)
    np.testing.assert_allclose(encoder_distance(encoder, a, b, batch_size=3).numpy(), expected, rtol=rtol)
    assert encode(encoder, a, batch_size=2).shape == (7, 5)


@pytest.mark.parametrize("module", [representation, inversion, scores])
def test_docstring_examples(module):
    result = doctest.testmod(module, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


# --- bad arguments ----------------------------------------------------------------------------------------------

_X = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(0))
_Y = torch.tensor([0, 1])
_ID = nn.Flatten()


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: representation_fn(lambda x: x), "model"),
        (lambda: invert(_ID, _X, _X + 1.0), "x_seed"),
        (lambda: invert(_ID, _X, _X[:1]), "x_seed and x_target"),
        (lambda: invert(_ID, _X, _X, steps=-1), "steps"),
        (lambda: invert(_ID, _X, _X, window=0), "window"),
        (lambda: invert(_ID, _X, _X, tol=1.0), "tol"),
        (lambda: invert(_ID, _X, _X, eps=-1.0), "eps"),
        (lambda: invert(_ID, _X, _X, batch_size=0), "batch_size"),
        (lambda: other_image_seeds(_X[:1], _Y[:1]), "x"),
        (lambda: other_image_seeds(_X, torch.tensor([0, 1, 2])), "y"),
        (lambda: noise_seeds((2, 1, 4, 4), amplitude=0.7), "amplitude"),
        (lambda: fit_class_gaussians(_X, _Y, num_classes=2, downsample=5), "downsample"),
        (lambda: fit_class_gaussians(_X, _Y, num_classes=2), "class 0"),
        (lambda: fit_class_gaussians(_X, torch.tensor([0, 2]), num_classes=2), "num_classes"),
        (lambda: generate(_ID, _X, _Y, eps=0.0), "eps"),
        (lambda: generate(_ID, _X, _Y, steps=-1), "steps"),
        (lambda: generate(_ID, _X, _Y.float()), "target"),
        (lambda: generate(_ID, _X * 2, _Y), "seeds"),
        (lambda: ssim(_X, _X[:, :, :11]), "a and b"),
        (lambda: ssim(_X, _X, kernel_size=4), "kernel_size"),
        (lambda: ssim(_X[:, :, :8, :8], _X[:, :, :8, :8]), "smaller than the SSIM window"),
        (lambda: psnr(_X, _X, data_range=0.0), "data_range"),
        (lambda: fid(torch.zeros(1, 3), torch.zeros(4, 3)), "feats_a"),
        (lambda: fid(torch.zeros(4, 3), torch.zeros(4, 2)), "same dimension"),
        (lambda: fid(torch.zeros(4, 3), torch.full((4, 3), float("nan"))), "feats_b"),
        (lambda: fid(torch.rand(4, 3), torch.rand(4, 3), method="cholesky"), "method"),
        (lambda: judge_accuracy(_ID, _X, torch.tensor([0, -1])), "target"),
    ],
)
def test_bad_arguments_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_class_seeds_bad_target(gaussians):
    with pytest.raises(ValueError, match="target"):
        class_seeds(gaussians, torch.tensor([10]), size=(28, 28))
    with pytest.raises(ValueError, match="size"):
        class_seeds(gaussians, torch.tensor([1]), size=(28, 0))


def test_generation_defaults_scale_the_papers_cifar_setting():
    """60 steps, eps 30, step 0.5 on 3072 values scaled to 784: same per-pixel RMS budget, steps * step = eps."""
    assert generation.DEFAULT_STEPS == 60
    assert generation.DEFAULT_STEPS * generation.DEFAULT_STEP_SIZE == pytest.approx(generation.DEFAULT_EPS)
    assert generation.DEFAULT_EPS / 784**0.5 == pytest.approx(30.0 / 3072**0.5, rel=0.02)
