"""Control attributions: registry entries, closed forms on hand-built images and a linear model on pixels, chance
levels and input-structured scores on real Fashion-MNIST images, and their model parameter randomisation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from metrics.attribution import METHODS, explain
from metrics.composites import object_masks
from metrics.controls import (
    BLUR_SIGMA,
    CONTROLS,
    JITTER,
    control_blur,
    control_edges,
    control_explainer,
    control_input,
    control_inverse,
    control_random,
)
from metrics.functional import (
    model_parameter_randomisation,
    pointing_game,
    relevance_mass_ratio,
    relevance_rank_accuracy,
    sparseness,
)
from tests.metrics.conftest import LinearScore


def test_registry_marks_controls_and_explain_gives_the_documented_draw():
    for name in CONTROLS:
        entry = METHODS.get(name)
        assert entry.control and entry.randomised and not entry.needs_background
    assert not any(METHODS.get(name).control for name in METHODS if not name.startswith("control_"))
    x = torch.rand(3, 2, 5, 5, generator=torch.Generator().manual_seed(9))
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(7))
    target = torch.zeros(3, dtype=torch.int64)
    models = [LinearScore(torch.ones(1, 2, 5, 5)), LinearScore(-torch.ones(1, 2, 5, 5))]
    for model in models:  # independent of the model
        assert torch.equal(explain(model, x, target, "control_random", seed=7), u)
        assert torch.equal(explain(model, x, target, "control_input", seed=7), x * u)
    assert torch.equal(control_random(None, torch.zeros_like(x), seed=7), u)  # independent of the input values
    assert not torch.equal(control_random(None, x, seed=8), u)


def test_model_free_maps_by_hand():
    """1 - x exactly (plus the jitter u of control_random); the blur of an impulse is scipy's truncated Gaussian
    kernel (sigma 2, radius 8, normalised) as an outer product; the Sobel magnitude of a vertical step of height 1
    is 4 on the two columns beside it and 0 elsewhere (kernel [1, 2, 1] x [-1, 0, 1], "nearest" borders)."""
    x = torch.rand(2, 1, 20, 20, generator=torch.Generator().manual_seed(1))
    u = control_random(None, x, seed=3)
    assert torch.equal(control_inverse(None, x, seed=3), 1 - x + JITTER * u)
    impulse = torch.zeros(1, 1, 21, 21, dtype=torch.float64)
    impulse[0, 0, 10, 10] = 1.0
    k = torch.arange(-8, 9, dtype=torch.float64)
    kernel = torch.exp(-(k**2) / (2 * BLUR_SIGMA**2))
    kernel /= kernel.sum()
    expected = torch.zeros(21, 21, dtype=torch.float64)
    expected[2:19, 2:19] = torch.outer(kernel, kernel)
    blurred = control_blur(None, impulse, seed=0)[0, 0]
    assert float((blurred - expected).abs().max()) <= JITTER + 1e-15
    step = torch.zeros(1, 1, 8, 8)
    step[..., 4:] = 1.0
    edges = control_edges(None, step, seed=0)[0, 0]
    expected = torch.zeros(8, 8)
    expected[:, 3:5] = 4.0
    assert float((edges - expected).abs().max()) <= 2 * JITTER
    for name in CONTROLS[2:]:  # model-free: the same map for any model, fresh jitter from control_explainer
        a = explain(LinearScore(torch.ones(1, 1, 20, 20)), x, torch.zeros(2, dtype=torch.int64), name, seed=4)
        assert torch.equal(
            a, explain(LinearScore(-torch.ones(1, 1, 20, 20)), x, torch.zeros(2, dtype=torch.int64), name, seed=4)
        )
        fresh = control_explainer(name, generator=torch.Generator().manual_seed(0))
        b, c = fresh(None, x, None), fresh(None, x, None)
        assert not torch.equal(b, c) and float((b - c).abs().max()) <= JITTER


def test_jitter_breaks_ties_at_random():
    """On a black background 1 - x ties at 1: the jitter orders those pixels at random, not by index."""
    x = torch.zeros(1, 1, 28, 28)
    x[..., 10:18, 10:18] = 1.0
    a = control_inverse(None, x, seed=0).flatten()
    order = torch.sort(a, descending=True, stable=True).indices
    background = order[: 784 - 64]
    assert bool((x.flatten()[background] == 0).all())  # background first
    assert not torch.equal(background, background.sort().values)  # ties not broken by index


def test_input_controls_reach_the_mask_metrics_maximum(fmnist_test):
    """The registry's reason for taking mass ratio and pointing game out of the headline: with masks that are the
    input's own support, control_input's mass ratio is 99.8% of the attainable 1 / (object share) on average (at
    least 97.9% on every image of the first 200) and its pointing game is 1; Gini of the input alone is 0.61."""
    x, y = fmnist_test
    masks = object_masks(x)
    share = masks.flatten(1).double().mean(1)
    of_max = relevance_mass_ratio(control_input(None, x, y, seed=0), masks).double() * share
    assert of_max.mean().item() == pytest.approx(0.998, abs=0.0005) and of_max.min().item() > 0.97
    assert pointing_game(control_input(None, x, y, seed=0), masks).mean().item() == 1.0
    assert sparseness(x).mean().item() == pytest.approx(0.61, abs=0.01)


def _binary_images(n: int, k_side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n 28x28 images: a k_side x k_side block of ones at a different place in each, black elsewhere."""
    x = torch.zeros(n, 1, 28, 28)
    for i in range(n):
        r, c = (3 * i) % (28 - k_side), (5 * i) % (28 - k_side)
        x[i, 0, r : r + k_side, c : c + k_side] = 1.0
    return x, torch.zeros(n, dtype=torch.int64)


def test_control_input_localises_exactly_like_gradient_x_input_on_a_linear_model():
    """LinearScore with w = 1: gradient x input = x. On a binary object on black, every positive attribution of
    both lies on the object: relevance mass ratio = H*W / k (the inverse object share), pointing game and
    relevance rank accuracy = 1, for any noise draw."""
    x, target = _binary_images(8, 10)
    masks = object_masks(x)
    model = LinearScore(torch.ones(1, 1, 28, 28))
    ixg = explain(model, x, target, "input_x_gradient")
    assert torch.equal(ixg, x)
    ctrl = explain(model, x, target, "control_input", seed=3)
    for a in (ixg, ctrl):
        assert torch.allclose(relevance_mass_ratio(a, masks), torch.full((8,), 784 / 100))
        assert torch.equal(pointing_game(a, masks), torch.ones(8))
        assert torch.equal(relevance_rank_accuracy(a, masks), torch.ones(8))


def test_control_random_gini_is_one_third():
    """The Gini index of U[0,1) is 1/3 (mean absolute difference 1/3 over twice the mean 1/2). Per 784-pixel map
    the sample Gini has sd ~0.009 and bias -1/(3n) ~ -4e-4; the mean of 64 maps is within 0.004 (> 3 sd)."""
    a = control_random(None, torch.zeros(64, 1, 28, 28), seed=0)
    assert sparseness(a).mean().item() == pytest.approx(1 / 3, abs=0.004)
    assert sparseness(a).std().item() < 0.02


def test_controls_on_fashion_mnist(fmnist_test):
    """Object masks = pixels > 0.05. control_input carries the object: mass ratio > 1 on every image, pointing 1.
    control_random is chance: E[mass ratio] = 1 and P(argmax in mask) = mask share exactly (exchangeable pixels);
    tolerances are 4 standard errors of the mean over the 200 images."""
    x, y = fmnist_test
    masks = object_masks(x)
    share = masks.flatten(1).double().mean(1)
    ctrl = control_input(None, x, y, seed=0)
    assert bool((relevance_mass_ratio(ctrl, masks) > 1).all())
    assert relevance_mass_ratio(ctrl, masks).mean() > 2
    assert pointing_game(ctrl, masks).mean().item() >= 0.99
    assert relevance_rank_accuracy(ctrl, masks).mean().item() > 0.9
    rand = control_random(None, x, y, seed=0)
    ratio = relevance_mass_ratio(rand, masks).double()
    assert abs(ratio.mean().item() - 1) < 4 * ratio.std().item() / math.sqrt(len(x))
    hit = pointing_game(rand, masks).double()
    se = math.sqrt((share * (1 - share)).sum().item()) / len(x)
    assert abs(hit.mean().item() - share.mean().item()) < 4 * se


def _two_layer() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 8), nn.ReLU(), nn.Linear(8, 2))


def test_seeded_control_fails_mprt_with_one():
    """The registered (seeded) control ignores the model: its explanation of every randomised copy equals the
    original, so MPRT (Spearman) is exactly 1 on every image and layer."""
    x, target = _binary_images(4, 8)
    model = _two_layer()
    explain_fn = lambda m, xb, t: control_input(m, xb, t, seed=5)  # noqa: E731
    s = model_parameter_randomisation(model, x, target, explain_fn, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(s, torch.ones(4, 2))


def test_fresh_control_mprt_is_the_input_structure_floor():
    """With fresh noise per call, MPRT of x * u compares two independent draws. On a binary image with m black
    and k object pixels the black pixels tie at rank (m+1)/2 in both maps and the object ranks are independent
    permutations of m+1..n, so E[rho] = between-group / total sum of squares of the ranks = (m k n / 4) / V,
    V = m (k/2)^2 + sum_{j=m+1..n} (j - (n+1)/2)^2. Per image sd ~ (1 - E[rho]) / sqrt(k) ~ 0.0125; the mean
    of 64 images is within 0.01 (> 4 sd)."""
    x, target = _binary_images(64, 20)
    n, k = 784, 400
    m = n - k
    ranks = torch.arange(m + 1, n + 1, dtype=torch.float64)
    total = m * (k / 2) ** 2 + ((ranks - (n + 1) / 2) ** 2).sum().item()
    expected = (m * k * n / 4) / total
    explain_fn = control_explainer("control_input", generator=torch.Generator().manual_seed(2))
    s = model_parameter_randomisation(_two_layer(), x, target, explain_fn, generator=torch.Generator().manual_seed(1))
    assert s.mean().item() == pytest.approx(expected, abs=0.01)
    assert expected < 0.9  # ~0.85: far from the seeded control's 1


def test_control_explainer_and_controls_reject_bad_arguments():
    with pytest.raises(ValueError, match="name"):
        control_explainer("control_gradient", generator=torch.Generator())
    with pytest.raises(ValueError, match="generator"):
        control_explainer("control_input", generator=None)
    with pytest.raises(ValueError, match="x must be"):
        control_input(None, torch.zeros(3, 28, 28), seed=0)
