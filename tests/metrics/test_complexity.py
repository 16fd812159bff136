"""Sparseness: against Quantus's Sparseness and known Gini values."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import torch

from metrics.functional import sparseness
from tests.metrics.conftest import run_quantus


@pytest.mark.parametrize("which", ["standard", "robust"])
def test_matches_quantus(which, request, standard_model, images):
    a = request.getfixturevalue(f"{which}_saliency")
    x, y = images
    q = run_quantus(quantus.Sparseness(disable_warnings=True), standard_model, x, y, a)
    # Quantus adds 1e-7 to every |a| (after dividing by the batch's max |a|), which scales the exact Gini index by
    # S / (S + n * 1e-7), S = sum |a| / max|a|: with that factor the two agree to float32 precision...
    s = (a / a.abs().max()).flatten(1).sum(1).double()
    np.testing.assert_allclose((sparseness(a).double() * s / (s + 784e-7)).numpy(), q, atol=1e-6, rtol=0)
    # ...and without it they differ by G * n * 1e-7 / S: up to ~7e-5 on the robust model's concentrated maps.
    np.testing.assert_allclose(sparseness(a).numpy(), q, atol=1e-4, rtol=0)


def test_known_values():
    n = 784
    uniform = torch.full((2, 1, 28, 28), 0.3)
    assert torch.equal(sparseness(uniform), torch.zeros(2))
    one_hot = torch.zeros(1, 1, 28, 28)
    one_hot[0, 0, 5, 7] = -2.0  # |a| is used
    assert sparseness(one_hot).item() == pytest.approx((n - 1) / n, abs=1e-7)
    assert torch.equal(sparseness(torch.zeros(3, 28, 28)), torch.zeros(3))
    a = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(sparseness(a * 1e-6).numpy(), sparseness(a).numpy(), atol=1e-6)  # scale-invariant
    single = torch.cat([sparseness(a[i:i + 1]) for i in range(4)])
    np.testing.assert_allclose(single.numpy(), sparseness(a).numpy(), atol=1e-7)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="NaN"):
        sparseness(torch.full((1, 4), float("nan")))
    with pytest.raises(ValueError, match="attributions"):
        sparseness(torch.ones(4))
