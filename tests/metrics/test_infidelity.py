"""Infidelity: against Quantus's Infidelity (black and uniform baselines) and by hand."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import torch

from metrics.functional import infidelity
from tests.metrics.conftest import LinearScore, record_numpy_random, run_quantus

RTOL = 1e-5  # relative: values are squared logit gaps (~1e2); float32 sums in a different order, observed ~2e-7


def test_matches_quantus_black(standard_model, images, standard_saliency):
    x, y, a = images[0][:4], images[1][:4], standard_saliency[:4]
    q = run_quantus(quantus.Infidelity(n_perturb_samples=1, perturb_baseline=0.0, disable_warnings=True),
                    standard_model, x, y, a)  # fmt: skip
    ours = infidelity(standard_model, x, a, y)
    np.testing.assert_allclose(ours.numpy(), q, rtol=RTOL)


def test_matches_quantus_uniform_with_its_noise(robust_model, images, robust_saliency):
    x, y, a = images[0][:4], images[1][:4], robust_saliency[:4]
    metric = quantus.Infidelity(n_perturb_samples=2, perturb_patch_sizes=[7], perturb_baseline="uniform",
                                disable_warnings=True)  # fmt: skip
    with record_numpy_random("uniform") as draws:
        q = run_quantus(metric, robust_model, x, y, a)
    noise = torch.from_numpy(np.stack(draws)).float().reshape(2, 16, 4).permute(2, 0, 1)  # (N, samples, patches)
    ours = infidelity(robust_model, x, a, y, patch_size=7, noise=noise)
    np.testing.assert_allclose(ours.numpy(), q, rtol=RTOL)


def test_linear_model_gradient_is_perfectly_faithful():
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(2, 8, 8, generator=g)
    x = torch.rand(3, 2, 8, 8, generator=g)
    target = torch.zeros(3, dtype=torch.int64)
    # Logit = w . x, so f(x) - f(x_k) = w . (x - x_k) exactly: the gradient w has zero infidelity.
    out = infidelity(LinearScore(weight), x, weight.expand_as(x), target, generator=g, baseline="uniform")
    np.testing.assert_allclose(out.numpy(), 0.0, atol=1e-9)
    assert bool((infidelity(LinearScore(weight), x, torch.zeros_like(x), target) > 0).all())


def test_deterministic_baselines_ignore_n_samples_and_batching(standard_model, images, standard_saliency):
    x, y, a = images[0][:3], images[1][:3], standard_saliency[:3]
    one = infidelity(standard_model, x, a, y, patch_size=7, n_samples=1)
    np.testing.assert_allclose(infidelity(standard_model, x, a, y, patch_size=7, n_samples=5, batch_size=5).numpy(),
                               one.numpy(), rtol=1e-6)  # fmt: skip
    single = torch.cat([infidelity(standard_model, x[i:i + 1], a[i:i + 1], y[i:i + 1], patch_size=7) for i in range(3)])
    np.testing.assert_allclose(single.numpy(), one.numpy(), rtol=1e-6)
    # (N, 1, H, W) attributions broadcast like (N, C, H, W) ones.
    np.testing.assert_allclose(infidelity(standard_model, x, a[:, 0], y, patch_size=7).numpy(), one.numpy(), rtol=1e-6)


def test_uniform_determinism(standard_model, images, standard_saliency):
    x, y, a = images[0][:2], images[1][:2], standard_saliency[:2]
    run = lambda seed: infidelity(standard_model, x, a, y, patch_size=14, n_samples=3, baseline="uniform",  # noqa: E731
                                  generator=torch.Generator().manual_seed(seed))  # fmt: skip
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
