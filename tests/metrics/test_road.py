"""ROAD: noisy linear imputation against Quantus's ``noisy_linear_imputation`` (same draws) and hand-computed
imputations, the ROAD curve against ``quantus.ROAD`` per example on real Fashion-MNIST images, and the
perturbation curves with ``fill="road"`` against curves built image by image from Quantus's imputation."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import quantus
import torch
from quantus.functions.perturb_func import noisy_linear_imputation as quantus_imputation

from metrics.functional import (
    abpc,
    curve_auc,
    deletion_auc,
    deletion_auc_relative,
    insertion_auc,
    noisy_linear_imputation,
    perturbation_curve,
    road_curve,
    single_pixel_imputation,
)
from tests.metrics.conftest import ConstantLogits, record_numpy_random, run_quantus

# float64 and rtol=1e-12: CG's error is <= cond(M) * 1e-12 * |b| (cond <~ 1e3 on 28x28) and spsolve's ~1e-15.
ATOL64 = 1e-8
# float32 at the default rtol=1e-6: measured <= 1.3e-5 against the direct solve on saliency/random/intensity
# orders of Fashion-MNIST images (cond <~ 1e3 times float32's ~1e-7 rounding plus the 1e-6 residual).
ATOL32 = 5e-5


def _masks(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Removal masks (N, 1, H, W) of several kinds: random fractions, the brightest pixels (one blob), a border."""
    g = torch.Generator().manual_seed(seed)
    n, _, h, w = x.shape
    fraction = torch.linspace(0.05, 0.98, n).reshape(n, 1, 1, 1)
    random = torch.rand(n, 1, h, w, generator=g) < fraction
    ranks = (-x.sum(1).flatten(1)).argsort(1).argsort(1).reshape(n, 1, h, w)
    blob = ranks < (fraction * h * w).long()
    border = torch.zeros(n, 1, h, w, dtype=torch.bool)
    border[..., :3, :] = border[..., :, -2:] = True
    return torch.cat([random, blob, border])


def _quantus(x: np.ndarray, removed: np.ndarray, noise: float = 0.0) -> tuple[np.ndarray, list[np.ndarray]]:
    """Quantus's imputation per image (its indices: the row-major removed pixels); its randn draws."""
    out = np.empty_like(x)
    with record_numpy_random("randn") as draws:
        for i in range(x.shape[0]):
            out[i] = quantus_imputation(x[i], np.flatnonzero(removed[i, 0]), noise=noise)
    return out, draws


def test_matches_quantus_without_noise(images):
    x = images[0][:6].double()
    removed = _masks(images[0][:6], seed=0)
    x = x.repeat(3, 1, 1, 1)
    ours = noisy_linear_imputation(x, removed, noise_std=0.0, rtol=1e-12)
    expected, _ = _quantus(x.numpy(), removed.numpy())
    np.testing.assert_allclose(ours.numpy(), expected, atol=ATOL64, rtol=0)
    assert bool((ours[~removed.expand_as(x)] == x[~removed.expand_as(x)]).all())


def test_matches_quantus_with_its_noise_and_channels():
    # Three channels share the removed pixels (Quantus imputes all channels at its indices); noise 0.01.
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 9, 11, generator=g, dtype=torch.float64)
    removed = torch.rand(4, 1, 9, 11, generator=g) < torch.tensor([0.1, 0.5, 0.8, 0.95]).reshape(4, 1, 1, 1)
    expected, draws = _quantus(x.numpy(), removed.numpy(), noise=0.01)
    z = torch.zeros(x.shape, dtype=torch.float64)
    for i, draw in enumerate(draws):  # randn(C, n_removed) for the removed pixels in row-major order
        z[i].flatten(1)[:, removed[i, 0].flatten()] = torch.from_numpy(draw)
    ours = noisy_linear_imputation(x, removed, noise_std=0.01, noise=z, rtol=1e-12)
    np.testing.assert_allclose(ours.numpy(), expected, atol=ATOL64, rtol=0)
    # Per-channel masks: each channel is its own system, as Quantus on that channel alone.
    per_channel = torch.rand(4, 3, 9, 11, generator=g) < 0.6
    ours = noisy_linear_imputation(x, per_channel, noise_std=0.0, rtol=1e-12)
    for c in range(3):
        expected, _ = _quantus(x[:, c : c + 1].numpy(), per_channel[:, c : c + 1].numpy())
        np.testing.assert_allclose(ours[:, c : c + 1].numpy(), expected, atol=ATOL64, rtol=0)


def test_float32_default_tolerance_against_quantus(images, standard_saliency):
    x = images[0][:8]
    ranks = (-standard_saliency[:8].flatten(1)).argsort(1).argsort(1).reshape(8, 1, 28, 28)
    removed = torch.cat([ranks < k for k in (78, 392, 706, 776)])
    x = x.repeat(4, 1, 1, 1)
    ours = noisy_linear_imputation(x, removed, noise_std=0.0)
    assert ours.dtype == torch.float32
    expected, _ = _quantus(x.double().numpy(), removed.numpy())
    np.testing.assert_allclose(ours.double().numpy(), expected, atol=ATOL32, rtol=0)


def test_hand_computed_imputations():
    x = torch.arange(1.0, 10.0, dtype=torch.float64).reshape(1, 1, 3, 3)
    centre = torch.zeros(1, 1, 3, 3, dtype=torch.bool)
    centre[..., 1, 1] = True
    # (1/6 (2 + 4 + 6 + 8) + 1/12 (1 + 3 + 7 + 9)) / 1 = 5
    assert noisy_linear_imputation(x, centre, noise_std=0.0, rtol=1e-12)[0, 0, 1, 1].item() == pytest.approx(5.0)
    # A corner has 2 direct and 1 diagonal neighbour: (2/6 + 4/6 + 5/12) / (5/12) = 2.6.
    corner = torch.zeros_like(centre)
    corner[..., 0, 0] = True
    value = noisy_linear_imputation(x, corner, noise_std=0.0, rtol=1e-12)[0, 0, 0, 0].item()
    assert value == pytest.approx((2 / 6 + 4 / 6 + 5 / 12) / (5 / 12), abs=1e-12)
    # Two adjacent removed pixels in a row of a 1x4 image [1, ?, ?, 4]: v1 = (1 + v2) / 2, v2 = (v1 + 4) / 2.
    row = torch.tensor([[[[1.0, 0.0, 0.0, 4.0]]]], dtype=torch.float64)
    pair = torch.tensor([[[[False, True, True, False]]]])
    np.testing.assert_allclose(
        noisy_linear_imputation(row, pair, noise_std=0.0, rtol=1e-12)[0, 0, 0].numpy(), [1.0, 2.0, 3.0, 4.0], atol=1e-12
    )


def test_single_pixel_closed_form_equals_the_imputation_of_that_pixel_alone(images):
    """Every pixel of two real images (float64, with noise, two channels, corners, borders and the interior): the
    closed form equals noisy_linear_imputation with that one pixel removed, Quantus's spsolve on a few, and the
    hand-computed corner of the 3x3 example."""
    x = torch.cat([images[0][:2], images[0][2:4].flip(-1)], dim=1).double()  # (2, 2, 28, 28)
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    closed = single_pixel_imputation(x, noise_std=0.05, noise=z)
    n, c, h, w = x.shape
    removed = torch.eye(h * w, dtype=torch.bool).reshape(h * w, 1, h, w)  # one mask per pixel
    for i in range(n):
        solved = noisy_linear_imputation(
            x[i : i + 1].expand(h * w, c, h, w), removed, noise_std=0.05, noise=z[i : i + 1].expand(h * w, c, h, w)
        )
        at_pixel = solved[removed.expand(-1, c, -1, -1)].reshape(h * w, c).T.reshape(c, h, w)
        np.testing.assert_allclose(closed[i].numpy(), at_pixel.numpy(), atol=ATOL64, rtol=0)
    for r, col in ((0, 0), (0, 13), (27, 27), (14, 9)):
        q = quantus_imputation(x[0, :1].numpy(), np.array([r * w + col]), noise=0.0)
        assert closed[0, 0, r, col].item() - 0.05 * z[0, 0, r, col].item() == pytest.approx(q[0, r, col], abs=1e-12)
    grid = torch.arange(1.0, 10.0, dtype=torch.float64).reshape(1, 1, 3, 3)
    corner = single_pixel_imputation(grid, noise_std=0.0)[0, 0, 0, 0].item()
    assert corner == pytest.approx((2 / 6 + 4 / 6 + 5 / 12) / (5 / 12), abs=1e-12)
    drawn = single_pixel_imputation(x, generator=torch.Generator().manual_seed(3))
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.equal(drawn, single_pixel_imputation(x, noise=noise))
    with pytest.raises(ValueError, match="at least 2x2"):
        single_pixel_imputation(torch.zeros(1, 1, 1, 5))
    with pytest.raises(ValueError, match="noise must be"):
        single_pixel_imputation(x, noise=torch.zeros(1, 1, 28, 28))


def test_everything_removed_gives_the_noise():
    x = torch.rand(2, 1, 5, 5, dtype=torch.float64)
    z = torch.randn(2, 1, 5, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    all_removed = torch.ones(2, 1, 5, 5, dtype=torch.bool)
    np.testing.assert_allclose(noisy_linear_imputation(x, all_removed, noise=z).numpy(), (0.01 * z).numpy(), atol=0)
    assert torch.equal(noisy_linear_imputation(x, ~all_removed), x)


def test_generator_draws_standard_normal_images(images):
    x, removed = images[0][:3], _masks(images[0][:3], seed=2)[:3]
    drawn = noisy_linear_imputation(x, removed, generator=torch.Generator().manual_seed(4))
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(4))
    assert torch.equal(drawn, noisy_linear_imputation(x, removed, noise=z))
    assert not torch.equal(drawn, noisy_linear_imputation(x, removed, generator=torch.Generator().manual_seed(5)))


def test_batched_equals_per_image(images):
    x = images[0][:5].double()
    removed = _masks(images[0][:5], seed=3)
    x = x.repeat(3, 1, 1, 1)
    full = noisy_linear_imputation(x, removed, noise_std=0.0, rtol=1e-10)
    single = torch.cat(
        [
            noisy_linear_imputation(x[i : i + 1], removed[i : i + 1], noise_std=0.0, rtol=1e-10)
            for i in range(x.shape[0])
        ]
    )
    np.testing.assert_allclose(full.numpy(), single.numpy(), atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(removed=torch.zeros(2, 1, 28, 28)), "removed"),
        (dict(removed=torch.zeros(2, 2, 28, 28, dtype=torch.bool)), "removed"),
        (dict(noise_std=-1.0), "noise_std"),
        (dict(noise_std=float("nan")), "noise_std"),
        (dict(noise=torch.zeros(2, 1, 28, 27)), "noise"),
        (dict(rtol=0.0), "rtol"),
        (dict(generator=1), "generator"),
    ],
)
def test_bad_arguments_raise(kwargs, match, images):
    kw = {"removed": torch.zeros(2, 1, 28, 28, dtype=torch.bool), **kwargs}
    with pytest.raises(ValueError, match=match):
        noisy_linear_imputation(images[0][:2], **kw)


def test_road_curve_matches_quantus_road_per_example(standard_model, images, standard_saliency):
    n = 4
    x, y, a = images[0][:n], images[1][:n], standard_saliency[:n]
    percentages = list(range(1, 100, 6))  # every third of Quantus's default range(1, 100, 2)
    removed, perturbed = [], []

    def recording_imputation(arr, indices, **kwargs):  # Quantus's own function, its indices and output kept
        out = quantus_imputation(arr=arr, indices=indices, **kwargs)
        removed.append(np.asarray(indices).copy())
        perturbed.append(out)
        return out

    def quantus_road(i: int) -> list[float]:
        metric = quantus.ROAD(percentages=percentages, perturb_func=recording_imputation, disable_warnings=True)
        return list(run_quantus(metric, standard_model, x[i : i + 1], y[i : i + 1], a[i : i + 1]).values())

    state = np.random.get_state()
    np.random.seed(0)  # Quantus draws from numpy's global RNG: fixed draws keep the margin check below fixed
    try:
        with record_numpy_random("randn") as draws:
            expected = np.array([quantus_road(i) for i in range(n)])
    finally:
        np.random.set_state(state)
    # Quantus draws randn(C, k) per example and percentage, for its top-k indices in order.
    z = torch.zeros(n, len(percentages), 1, 28, 28)
    for call, (idx, draw) in enumerate(zip(removed, draws, strict=True)):
        z[call // len(percentages), call % len(percentages)].flatten(1)[:, idx] = torch.from_numpy(draw).float()
    ours = road_curve(standard_model, x, a, y, percentages=percentages, noise=z)
    # Ours ranks with a stable sort, Quantus with np.argsort: the removed sets agree where there are no ties.
    ranks = torch.from_numpy(np.argsort(-a.flatten(1).numpy(), axis=1, kind="stable"))
    for call, idx in enumerate(removed):
        assert set(idx.tolist()) == set(ranks[call // len(percentages), : len(idx)].tolist())
    # A 0/1 entry can differ only if our image (max pixel difference delta from Quantus's) moves the logit gap
    # (target minus best other class) across 0: to first order, only if delta >= |gap| / ||d gap / dx||_1. With
    # these draws that ratio is >= 1e-4 on Quantus's images and delta ~1e-5, so the curves must agree exactly.
    images_q = torch.from_numpy(np.stack(perturbed)).float().requires_grad_(True)
    masks = torch.zeros(len(removed), 1, 28 * 28, dtype=torch.bool)
    for call, idx in enumerate(removed):
        masks[call, 0, idx] = True
    x_rep = x.repeat_interleave(len(percentages), dim=0)
    images_ours = noisy_linear_imputation(x_rep, masks.reshape(-1, 1, 28, 28), noise=z.flatten(0, 1))
    delta = float((images_ours - images_q.detach()).abs().max())
    target = y.repeat_interleave(len(percentages))
    logits = standard_model(images_q)
    other = logits.detach().scatter(1, target[:, None], float("-inf")).argmax(dim=1)
    gap = (logits.gather(1, target[:, None]) - logits.gather(1, other[:, None])).squeeze(1)
    (grad,) = torch.autograd.grad(gap.sum(), images_q)
    assert delta <= ATOL32
    assert float((gap.detach().abs() / grad.flatten(1).abs().sum(dim=1)).min()) > 2 * delta
    np.testing.assert_array_equal(ours.numpy(), expected)
    assert 0 < expected.mean() < 1  # both outcomes occur


def test_road_curve_lerf_and_bad_arguments(standard_model, images, standard_saliency):
    x, y, a = images[0][:2], images[1][:2], standard_saliency[:2]
    z = torch.zeros(2, 2, 1, 28, 28)
    # Nothing removed: the model's own correctness; everything removed: the prediction on a constant 0 image.
    out = road_curve(standard_model, x, a, y, percentages=[0, 100], order="lerf", noise=z)
    with torch.no_grad():
        right = (standard_model(x).argmax(1) == y).float()
        blank = (standard_model(torch.zeros_like(x)).argmax(1) == y).float()
    np.testing.assert_array_equal(out.numpy(), torch.stack([right, blank], dim=1).numpy())
    for kwargs, match in (
        (dict(percentages=[101]), "percentages"),
        (dict(percentages=[]), "percentages"),
        (dict(order="random"), "order"),
        (dict(noise=torch.zeros(2, 3)), "noise"),
        (dict(batch_size=0), "batch_size"),
    ):
        with pytest.raises(ValueError, match=match):
            road_curve(standard_model, x, a, y, **kwargs)
    with pytest.raises(ValueError, match="NaN or infinite logits"):
        road_curve(ConstantLogits([float("nan"), 0.0]), x, a, torch.zeros(2, dtype=torch.int64), percentages=[10])


# fill="road" in the perturbation curves: each step's removed pixels come from Quantus's imputation of the kept ones.


def _road_oracle(model, x, a, y, z, counts, order, mode, noise_std=0.01):
    """Slow per-example, per-step curve: Quantus's imputation (noise 0) plus ``noise_std * z`` at the removed
    pixels, target softmax probability; every pixel removed = 0 plus the noise (see noisy_linear_imputation)."""
    n, c, h, w = x.shape
    key = -a.sum(1).flatten(1).numpy() if order == "morf" else a.sum(1).flatten(1).numpy()
    idx = np.argsort(key, axis=1, kind="stable")
    images = np.empty((n, len(counts), c, h, w))
    for i in range(n):
        for k, count in enumerate(counts):
            first = np.zeros(h * w, dtype=bool)
            first[idx[i, :count]] = True
            removed = first if mode == "deletion" else ~first
            image = x[i].numpy().copy()
            if removed.all():
                image[:] = 0.0
            elif removed.any():
                image = quantus_imputation(image, np.flatnonzero(removed), noise=0.0)
            images[i, k] = image + noise_std * z[i].numpy() * removed.reshape(1, h, w)
    with torch.no_grad():
        logits = model(torch.from_numpy(images).flatten(0, 1))
    return logits.softmax(-1).gather(1, y.repeat_interleave(len(counts))[:, None]).reshape(n, -1).numpy()


@pytest.fixture(scope="module")
def road_case(standard_model, images, standard_saliency):
    """float64 model and images, so that the imputation (rtol 1e-10) and Quantus's direct solve agree to ~1e-9."""
    model = copy.deepcopy(standard_model).double()
    x, y, a = images[0][:3].double(), images[1][:3], standard_saliency[:3].double()
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    return model, x, y, a, z


# |dp| <= 0.5 max_j |d logit_j| <= 0.5 max_j ||d logit_j / dx||_1 (~350 on these images) * max |dx| (<= ~1e-9 at
# float64's rtol 1e-10: ATOL64 above is 10x that) ~ 2e-7, plus the float32 storage of scores (6e-8).
ROAD_TOL = 1e-6


@pytest.mark.parametrize(("order", "mode"), [("morf", "deletion"), ("lerf", "deletion"), ("morf", "insertion")])
def test_road_fill_curve_matches_quantus_imputation(order, mode, road_case):
    model, x, y, a, z = road_case
    curve = perturbation_curve(model, x, a, y, order=order, mode=mode, fill="road", noise=z, n_steps=6)
    expected = _road_oracle(model, x, a, y, z, [k * 784 // 6 for k in range(7)], order, mode)
    np.testing.assert_allclose(curve.numpy(), expected, atol=ROAD_TOL, rtol=0)


def test_road_fill_aucs_and_generator(road_case):
    model, x, y, a, z = road_case
    counts = [k * 784 // 5 for k in range(6)]
    frac = torch.tensor(counts, dtype=torch.float64) / 784
    auc = lambda c: torch.trapezoid(torch.from_numpy(c), frac, dim=1).numpy()  # noqa: E731
    morf = auc(_road_oracle(model, x, a, y, z, counts, "morf", "deletion"))
    lerf = auc(_road_oracle(model, x, a, y, z, counts, "lerf", "deletion"))
    insertion = auc(_road_oracle(model, x, a, y, z, counts, "morf", "insertion"))
    kw = dict(fill="road", noise=z, n_steps=5)
    np.testing.assert_allclose(deletion_auc(model, x, a, y, **kw).numpy(), morf, atol=ROAD_TOL)
    np.testing.assert_allclose(insertion_auc(model, x, a, y, **kw).numpy(), insertion, atol=ROAD_TOL)
    np.testing.assert_allclose(abpc(model, x, a, y, **kw).numpy(), lerf - morf, atol=ROAD_TOL)
    # The generator draws z ~ N(0, 1) (N, C, H, W) first, then the random order.
    g = torch.Generator().manual_seed(2)
    noise = torch.randn(x.shape, generator=g, dtype=torch.float64)
    random = perturbation_curve(model, x, a, y, order="random", mode="deletion", generator=g, **{**kw, "noise": noise})
    relative = deletion_auc_relative(model, x, a, y, fill="road", n_steps=5, generator=torch.Generator().manual_seed(2))
    morf_g = deletion_auc(model, x, a, y, fill="road", noise=noise, n_steps=5)
    np.testing.assert_allclose(relative.numpy(), (curve_auc(random, n_features=784) - morf_g).numpy(), atol=1e-12)


def test_road_fill_constant_model_and_bad_arguments(standard_model, images, standard_saliency):
    x, y = images[0][:2], torch.zeros(2, dtype=torch.int64)
    model = ConstantLogits([2.0, 0.0, 1.0])
    p = torch.tensor([2.0, 0.0, 1.0]).softmax(0)[0].item()
    a = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    np.testing.assert_allclose(deletion_auc(model, x, a, y, fill="road", n_steps=4, generator=g).numpy(), p, atol=1e-6)
    a, y = standard_saliency[:2], images[1][:2]
    kw = dict(order="morf", mode="deletion", n_steps=4)
    for bad, match in (
        (dict(fill="zero"), "fill"),
        (dict(noise=torch.zeros(x.shape)), "noise"),
        (dict(fill="road", noise=torch.zeros(2, 1, 28, 27)), "noise"),
        (dict(fill="road", noise_std=-0.1), "noise_std"),
    ):
        with pytest.raises(ValueError, match=match):
            perturbation_curve(standard_model, x, a, y, **kw, **bad)
