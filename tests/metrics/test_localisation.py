"""Localisation metrics: against Quantus (RMA, RRA, PointingGame, Focus) and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import torch
from captum.attr import IntegratedGradients

from metrics.functional import (
    grid_pointing_game,
    pointing_game,
    relevance_mass_accuracy,
    relevance_mass_ratio,
    relevance_rank_accuracy,
)
from tests.metrics.conftest import run_quantus
from tests.metrics.rounding import U32, U64, gamma

# Tolerances. Quantus gets float64 attributions, so its sums are float64 (relative error <= gamma_n u64 for the n =
# 784 non-negative terms; its max-normalisation adds u64 per element). Ours accumulates in float64 too and returns
# the attributions' dtype: float64 results differ by <= 2 (2 gamma_785 + 2 u64) * value ~ 4e-13 (TOL64), float32
# results additionally by their final rounding, <= u32 * value <= u32 for values in [0, 1] (TOL32).
TOL64 = 1e-12
TOL32 = U32 + TOL64


@pytest.fixture(scope="module")
def masks(images):
    return images[0] > 0.3  # the bright part of each garment, (N, 1, H, W)


@pytest.mark.parametrize(
    ("metric", "ours"),
    [
        (quantus.RelevanceMassAccuracy, relevance_mass_accuracy),
        (quantus.RelevanceRankAccuracy, relevance_rank_accuracy),
        (quantus.PointingGame, pointing_game),
    ],
)
@pytest.mark.parametrize("which", ["standard", "robust"])
def test_matches_quantus(metric, ours, which, request, standard_model, images, masks):
    a = request.getfixturevalue(f"{which}_saliency")
    x, y = images
    q = run_quantus(metric(disable_warnings=True), standard_model, x, y, a.double(), masks.float())
    assert 4 * gamma(785, U64) < TOL64
    np.testing.assert_allclose(ours(a.double(), masks).numpy(), q, atol=TOL64, rtol=0)
    np.testing.assert_allclose(ours(a, masks).numpy(), q, atol=TOL32, rtol=0)
    np.testing.assert_allclose(ours(a[:, 0], masks[:, 0]).numpy(), q, atol=TOL32, rtol=0)  # (N, H, W) inputs


def test_grid_pointing_game_matches_quantus_focus(standard_model, images):
    x, y = images
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(16, generator=g).reshape(4, 4)
    top = torch.cat([x[idx[:, 0]], x[idx[:, 1]]], dim=3)
    bottom = torch.cat([x[idx[:, 2]], x[idx[:, 3]]], dim=3)
    mosaic = torch.cat([top, bottom], dim=2)  # (4, 1, 56, 56); the GAP model accepts it
    cell = torch.randint(0, 4, (4,), generator=g)
    target = y[idx.gather(1, cell[:, None]).squeeze(1)]
    a = IntegratedGradients(standard_model).attribute(mosaic, target=target, n_steps=8).detach()  # signed
    quadrants = [tuple(int(j == int(c)) for j in range(4)) for c in cell]
    q = run_quantus(
        quantus.Focus(disable_warnings=True), standard_model, mosaic, target, a.double(), custom_batch=quadrants
    )
    # Quantus adds 1e-9 to the denominator: a relative difference <= 1e-9 / total positive relevance; the float64
    # sums of 3136 non-negative terms add <= 2 gamma_3137 u64 ~ 7e-13 on each side.
    total = a.double().clamp(min=0).flatten(1).sum(1)
    tol = float((1e-9 / total).max()) + 4 * gamma(3137, U64)
    np.testing.assert_allclose(grid_pointing_game(a.double(), cell).numpy(), q, atol=tol, rtol=0)
    np.testing.assert_allclose(grid_pointing_game(a, cell).numpy(), q, atol=tol + U32, rtol=0)


def test_hand_cases():
    h = w = 4
    mask = torch.zeros(1, h, w, dtype=torch.bool)
    mask[0, :2, :2] = True  # a quarter of the image
    inside = torch.zeros(1, h, w)
    inside[0, 0, 1] = 2.0
    inside[0, 1, 0] = 1.0
    assert relevance_mass_accuracy(inside, mask).item() == 1.0
    assert relevance_mass_ratio(inside, mask).item() == 4.0
    assert pointing_game(inside, mask).item() == 1.0
    uniform = torch.ones(1, h, w)
    assert relevance_mass_accuracy(uniform, mask).item() == 0.25
    assert relevance_mass_ratio(uniform, mask).item() == 1.0  # chance level
    signed = inside.clone()
    signed[0, 3, 3] = -2.9  # signed total 0.1: the signed ratio would be 30 / 0.25 = 120
    assert relevance_mass_ratio(signed, mask).item() == 4.0  # positive mass only: all of it on the mask
    signed[0, 3, 2] = 1.0  # one positive unit off the mask: 3 of 4 positive units inside
    # float64 sums of exact values, one final float32 rounding (<= 2^-24 relative): approx's rel=1e-6 holds.
    assert relevance_mass_ratio(signed, mask).item() == pytest.approx(0.75 / 0.25)
    assert relevance_rank_accuracy(uniform, mask).item() == 0.25  # ties in expectation = chance
    assert pointing_game(uniform, mask).item() == 0.25
    ranked = torch.arange(16.0).flip(0).reshape(1, h, w)  # 15 at (0, 0): top-4 = first row
    assert relevance_rank_accuracy(ranked, mask).item() == 0.5
    assert pointing_game(ranked, mask).item() == 1.0
    tied = torch.tensor([[[5.0, 5.0, 5.0, 5.0], [1.0, 0.0, 0.0, 0.0], [0.0] * 4, [0.0] * 4]])
    # K = 4: the four tied pixels are exactly the top 4, two of them in the mask.
    assert relevance_rank_accuracy(tied, mask).item() == 0.5
    tied[0, 0, 0], tied[0, 1, 0] = 6.0, 5.0  # 6 in the mask, then 3 slots among 4 tied 5s (2 in the mask)
    assert relevance_rank_accuracy(tied, mask).item() == pytest.approx((1 + 3 * 2 / 4) / 4)


def test_empty_mask_and_zero_attributions_are_defined():
    a = torch.rand(2, 1, 5, 5, generator=torch.Generator().manual_seed(0))
    empty = torch.zeros(2, 1, 5, 5, dtype=torch.bool)
    for fn in (relevance_mass_accuracy, relevance_mass_ratio, relevance_rank_accuracy, pointing_game):
        assert torch.equal(fn(a, empty), torch.zeros(2))
    mask = torch.zeros(2, 5, 5, dtype=torch.bool)
    mask[:, 1:3, 1:3] = True
    zero = torch.zeros(2, 5, 5)
    assert torch.equal(relevance_mass_accuracy(zero, mask), torch.zeros(2))
    assert torch.equal(relevance_mass_ratio(zero, mask), torch.zeros(2))
    # counts divided in float64, then one float32 rounding: relative error <= 2^-24 < rtol 1e-7 (the default)
    np.testing.assert_allclose(pointing_game(zero, mask).numpy(), 4 / 25)
    np.testing.assert_allclose(relevance_rank_accuracy(zero, mask).numpy(), 4 / 25)
    assert torch.equal(grid_pointing_game(-torch.ones(2, 4, 4), torch.tensor([0, 3])), torch.zeros(2))


def test_grid_pointing_game_cells_and_channels():
    a = torch.zeros(1, 3, 6, 9)
    a[0, :, 2:4, 3:6] = 1.0  # the centre cell of a 3x3 grid, all channels
    a[0, 0, 0, 0] = -5.0  # negative: ignored
    assert grid_pointing_game(a, torch.tensor([4]), grid=(3, 3)).item() == 1.0
    assert grid_pointing_game(a, torch.tensor([0]), grid=(3, 3)).item() == 0.0
    odd = torch.ones(1, 5, 5)  # rows 0-1 / 2-4 and columns 0-1 / 2-4, as Focus's H // 2 split
    np.testing.assert_allclose(
        grid_pointing_game(odd.expand(4, 5, 5), torch.arange(4)).numpy(), np.array([4, 6, 6, 9]) / 25
    )


def test_bad_arguments_raise():
    a = torch.rand(2, 1, 4, 4)
    with pytest.raises(ValueError, match="mask"):
        relevance_mass_accuracy(a, torch.ones(2, 1, 4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        pointing_game(a, torch.full((2, 4, 4), 0.5))
    with pytest.raises(ValueError, match="attributions"):
        relevance_rank_accuracy(a * float("nan"), torch.ones(2, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="cell"):
        grid_pointing_game(a, torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="grid"):
        grid_pointing_game(a, torch.tensor([0, 1]), grid=(2,))
    assert relevance_mass_accuracy(a, torch.ones(2, 4, 4, dtype=torch.int64)).shape == (2,)  # 0/1 masks accepted
