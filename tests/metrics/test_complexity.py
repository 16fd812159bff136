"""Sparseness: against Quantus's Sparseness and known Gini values."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import torch

from metrics.functional import sparseness
from tests.metrics.conftest import run_quantus
from tests.metrics.rounding import U32, U64, gamma


@pytest.mark.parametrize("which", ["standard", "robust"])
def test_matches_quantus(which, request, standard_model, images):
    a = request.getfixturevalue(f"{which}_saliency")
    x, y = images
    # Quantus gets float64 attributions: its 0.6.0 Sparseness would otherwise add 1e-7 and sum the 784 values in
    # float32 (a denominator off by up to gamma_783 u32 ~ 5e-5 relative in the worst case, depending on the order).
    q = run_quantus(quantus.Sparseness(disable_warnings=True), standard_model, x, y, a.double())
    # Quantus adds 1e-7 to every |a| (after dividing by the batch's max |a|), which scales the exact Gini index by
    # S / (S + n * 1e-7), S = sum |a| / max|a|. With that factor the two agree to ours' final float32 rounding
    # (<= u32 G <= u32): Quantus's float64 division and addition move each value by <= 2 u64 relative, hence G by
    # <= 2 u64 (1 + G) (G = sum_ij |v_i - v_j| / (2 n sum v)); its float64 sums and ours add <= 2 gamma_784 u64.
    s = (a.double() / a.double().abs().max()).flatten(1).sum(1)
    tol = U32 + 8 * gamma(784, U64)
    np.testing.assert_allclose((sparseness(a).double() * s / (s + 784e-7)).numpy(), q, atol=tol, rtol=0)
    np.testing.assert_allclose((sparseness(a.double()) * s / (s + 784e-7)).numpy(), q, atol=8 * gamma(784, U64), rtol=0)
    # Without the factor they differ by G * n * 1e-7 / (S + n * 1e-7), a property of the data, not of rounding: up
    # to ~7e-5 on the robust model's concentrated maps.
    gap = (sparseness(a).double() * 784e-7 / (s + 784e-7)).numpy()
    assert gap.max() < 1e-4
    np.testing.assert_allclose(sparseness(a).numpy(), q, atol=gap.max() + tol, rtol=0)


def test_known_values():
    n = 784
    uniform = torch.full((2, 1, 28, 28), 0.3)
    assert torch.equal(sparseness(uniform), torch.zeros(2))
    one_hot = torch.zeros(1, 1, 28, 28)
    one_hot[0, 0, 5, 7] = -2.0  # |a| is used
    # computed in float64 (exact here), then rounded to float32: error <= u32 (n - 1) / n < 6e-8 < 1e-7
    assert sparseness(one_hot).item() == pytest.approx((n - 1) / n, abs=1e-7)
    assert torch.equal(sparseness(torch.zeros(3, 28, 28)), torch.zeros(3))
    a = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    # Scale-invariant: a * 1e-6 rounds every value (relative <= u32), which moves G by <= u32 (1 + G) (see above);
    # two final float32 roundings add <= 2 u32 G: in all <= 4 u32 ~ 2.4e-7 < 1e-6.
    np.testing.assert_allclose(sparseness(a * 1e-6).numpy(), sparseness(a).numpy(), atol=1e-6)
    # One example at a time: the same float64 computation per example (192 terms), then one float32 rounding, which
    # float64 differences of ~1e-16 can flip by at most one float32 ulp (<= 2^-24 for G < 1): atol 1e-7.
    single = torch.cat([sparseness(a[i : i + 1]) for i in range(4)])
    np.testing.assert_allclose(single.numpy(), sparseness(a).numpy(), atol=1e-7)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="NaN"):
        sparseness(torch.full((1, 4), float("nan")))
    with pytest.raises(ValueError, match="attributions"):
        sparseness(torch.ones(4))
