"""Max-Sensitivity: against Quantus's MaxSensitivity on its own noise, and by hand."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import torch

from metrics.functional import max_sensitivity
from tests.metrics.conftest import quantus_saliency, record_numpy_random, run_quantus, saliency
from tests.metrics.rounding import U64, Float64, float64_per_image, gamma


@pytest.mark.parametrize("which", ["standard", "robust"])
def test_matches_quantus_on_its_noise(which, request, images):
    # Both sides explain bitwise-identical float64 images with the same float64 model in the same batches (ours:
    # batch_size=6 explains one noise sample of the 6 images per call, as Quantus does), so the explanations are
    # equal; what differs is the float64 norms (784 terms, relative error <= gamma_784 u64 each, two per ratio, on
    # each side) and the differences a - a_j (u64): rtol = 4 gamma_786 u64 ~ 3.5e-13 < 1e-12.
    model = Float64(request.getfixturevalue(f"{which}_model"))
    x, y = images[0][:6], images[1][:6]
    a = saliency(model, x.double(), y)
    with record_numpy_random("uniform") as draws:
        q = run_quantus(
            quantus.MaxSensitivity(nr_samples=4, disable_warnings=True), model, x, y, a, explain_func=quantus_saliency
        )
    draws = np.stack(draws).reshape(4, 6, 1, 28, 28)
    assert float(np.abs(draws).max()) <= 0.2
    # Quantus adds its float64 noise to the float32 images and stores the sum as float32: the noise it applied is
    # fl32(x + u) - x (exact in float64).
    perturbed = torch.from_numpy((x.numpy()[None] + draws).astype(np.float32)).double()
    noise = (perturbed - x.double()[None]).transpose(0, 1)
    ours = max_sensitivity(model, x.double(), y, saliency, noise=noise, batch_size=6)
    np.testing.assert_allclose(ours.numpy(), q, rtol=4 * gamma(786, U64), atol=0)


def test_hand_cases(images):
    x, y = images[0][:3].double(), images[1][:3]
    model = torch.nn.Identity()
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(3, 5, 1, 28, 28, generator=g, dtype=torch.float64) * 0.4 - 0.2
    # explanation = the input: MS = max_j ||u_j|| / ||x||. float64: (x + u) - x differs from u by <= u64 |x + u|
    # elementwise (<= 1.2 u64, while ||u_j|| >= 2 here), norms of 784 terms add gamma_784 u64 each: rtol 1e-12.
    ours = max_sensitivity(model, x, y, lambda m, x, t: x.clone(), noise=noise)
    expected = noise.flatten(2).norm(dim=2).amax(dim=1) / x.flatten(1).norm(dim=1)
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=1e-12)
    linf = max_sensitivity(model, x, y, lambda m, x, t: x.clone(), noise=noise, norm="linf")
    expected = noise.flatten(2).abs().amax(dim=(1, 2)) / x.flatten(1).amax(1)
    np.testing.assert_allclose(linf.numpy(), expected.numpy(), rtol=1e-12)
    fixed = torch.rand(1, 1, 28, 28)
    constant = max_sensitivity(model, x, y, lambda m, x, t: fixed.expand(x.shape[0], -1, -1, -1), n_samples=3)
    assert torch.equal(constant, torch.zeros(3))
    zero = max_sensitivity(model, x, y, lambda m, x, t: torch.zeros_like(x), n_samples=3)
    assert torch.equal(zero, torch.zeros(3))
    relu = max_sensitivity(
        model,
        x * 0 - 1,
        y,
        lambda m, x, t: x.clamp(min=0),
        n_samples=3,
        radius=2.0,
        generator=torch.Generator().manual_seed(0),
    )
    assert bool(torch.isinf(relu).all())  # zero explanation that the noise makes non-zero: documented inf


def test_generator_determinism_and_batching(standard_model, images):
    # A per-image float64 model gives every image the same gradient in any batch, and the metric's norms are per
    # row in float64: equal by construction (1e-12 only absorbs float64 kernel nondeterminism, were there any).
    model = float64_per_image(standard_model)
    x, y = images[0][:3].double(), images[1][:3]

    def run(seed, bs=256):
        g = torch.Generator().manual_seed(seed)
        return max_sensitivity(model, x, y, saliency, n_samples=3, batch_size=bs, generator=g)

    first = run(0)
    assert first.dtype == torch.float64
    assert torch.equal(first, run(0))
    assert not torch.equal(first, run(1))
    np.testing.assert_allclose(run(0, bs=4).numpy(), first.numpy(), atol=1e-12, rtol=0)
    noise = torch.rand(3, 2, 1, 28, 28, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 0.4 - 0.2
    full = max_sensitivity(model, x, y, saliency, noise=noise)
    single = torch.cat(
        [max_sensitivity(model, x[i : i + 1], y[i : i + 1], saliency, noise=noise[i : i + 1]) for i in range(3)]
    )
    np.testing.assert_allclose(full.numpy(), single.numpy(), atol=1e-12, rtol=0)


def test_bad_arguments_raise(standard_model, images):
    x, y = images[0][:2], images[1][:2]
    with pytest.raises(ValueError, match="radius"):
        max_sensitivity(standard_model, x, y, saliency, radius=0.0)
    with pytest.raises(ValueError, match="norm"):
        max_sensitivity(standard_model, x, y, saliency, norm="l1")
    with pytest.raises(ValueError, match="noise"):
        max_sensitivity(standard_model, x, y, saliency, noise=torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="explain_fn"):
        max_sensitivity(standard_model, x, y, "saliency")
