"""Max-Sensitivity: against Quantus's MaxSensitivity on its own noise, and by hand."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import torch

from metrics.functional import max_sensitivity
from tests.metrics.conftest import quantus_saliency, record_numpy_random, run_quantus, saliency

TOL = 1e-5  # Quantus adds float64 noise before casting to float32 (ours: float32 noise); observed ~3e-7


@pytest.mark.parametrize("which", ["standard", "robust"])
def test_matches_quantus_on_its_noise(which, request, images):
    model = request.getfixturevalue(f"{which}_model")
    a = request.getfixturevalue(f"{which}_saliency")[:6]
    x, y = images[0][:6], images[1][:6]
    with record_numpy_random("uniform") as draws:
        q = run_quantus(quantus.MaxSensitivity(nr_samples=4, disable_warnings=True), model, x, y, a,
                        explain_func=quantus_saliency)  # fmt: skip
    noise = torch.from_numpy(np.stack(draws)).float().reshape(4, 6, 1, 28, 28).transpose(0, 1)
    assert float(noise.abs().max()) <= 0.2
    ours = max_sensitivity(model, x, y, saliency, noise=noise)
    np.testing.assert_allclose(ours.numpy(), q, atol=TOL, rtol=0)


def test_hand_cases(images):
    x, y = images[0][:3], images[1][:3]
    model = torch.nn.Identity()
    noise = torch.rand(3, 5, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 0.4 - 0.2
    # explanation = the input: MS = max_j ||u_j|| / ||x||
    ours = max_sensitivity(model, x, y, lambda m, x, t: x.clone(), noise=noise)
    expected = noise.flatten(2).norm(dim=2).amax(dim=1) / x.flatten(1).norm(dim=1)
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=1e-5)
    linf = max_sensitivity(model, x, y, lambda m, x, t: x.clone(), noise=noise, norm="linf")
    np.testing.assert_allclose(linf.numpy(), (noise.flatten(2).abs().amax(dim=(1, 2)) / x.flatten(1).amax(1)).numpy(),
                               rtol=1e-5)  # fmt: skip
    fixed = torch.rand(1, 1, 28, 28)
    constant = max_sensitivity(model, x, y, lambda m, x, t: fixed.expand(x.shape[0], -1, -1, -1), n_samples=3)
    assert torch.equal(constant, torch.zeros(3))
    zero = max_sensitivity(model, x, y, lambda m, x, t: torch.zeros_like(x), n_samples=3)
    assert torch.equal(zero, torch.zeros(3))
    relu = max_sensitivity(model, x * 0 - 1, y, lambda m, x, t: x.clamp(min=0), n_samples=3, radius=2.0,
                           generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert bool(torch.isinf(relu).all())  # zero explanation that the noise makes non-zero: documented inf


def test_generator_determinism_and_batching(standard_model, images):
    x, y = images[0][:3], images[1][:3]
    run = lambda seed, bs=256: max_sensitivity(standard_model, x, y, saliency, n_samples=3, batch_size=bs,  # noqa: E731
                                               generator=torch.Generator().manual_seed(seed))  # fmt: skip
    first = run(0)
    assert torch.equal(first, run(0))
    assert not torch.equal(first, run(1))
    np.testing.assert_allclose(run(0, bs=4).numpy(), first.numpy(), atol=1e-6)
    noise = torch.rand(3, 2, 1, 28, 28, generator=torch.Generator().manual_seed(2)) * 0.4 - 0.2
    full = max_sensitivity(standard_model, x, y, saliency, noise=noise)
    single = torch.cat([max_sensitivity(standard_model, x[i:i + 1], y[i:i + 1], saliency, noise=noise[i:i + 1])
                        for i in range(3)])  # fmt: skip
    np.testing.assert_allclose(full.numpy(), single.numpy(), atol=1e-6)


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
