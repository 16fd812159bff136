"""The inversion's convergence rule (metrics.featurevis.inversion.invert) on representations whose loss is known in
closed form: a loss that keeps falling runs to the cap, a flat one stops after one window, per image in one batch;
zero steps return the seeds."""

from __future__ import annotations

import torch
from torch import Tensor

from metrics.featurevis.inversion import inversion_loss, invert


def _identity(x: Tensor) -> Tensor:
    """rep(x) = x: the loss ||x - t|| / ||t|| falls by exactly step / ||t|| per normalised step towards t."""
    return x.flatten(1)


def _mixed(x: Tensor) -> Tensor:
    """Channel 0 as is, channel 1 rounded (zero gradient): an image whose channel 0 already equals its target's and
    whose channel 1 does not has a flat loss; one that differs in channel 0 has a falling one."""
    return torch.cat([x[:, 0].flatten(1), torch.round(x[:, 1]).flatten(1)], dim=1)


def test_a_falling_loss_runs_to_the_cap():
    # 16 pixels from 0 towards 0.5: ||t|| = 2, each step of L2 length 0.01 lowers the loss by 0.005, i.e. by
    # 0.05 per window of 10, at least 5% of the loss (<= 1): the rule never stops it; after 50 steps each pixel has
    # moved 50 * 0.01 / sqrt(16) = 0.125 and the loss is 1 - 50 * 0.005 = 0.75.
    target, seed = torch.full((3, 1, 4, 4), 0.5, dtype=torch.float64), torch.zeros(3, 1, 4, 4, dtype=torch.float64)
    out = invert(_identity, target, seed, steps=50, step_size=0.01, window=10, tol=0.01)
    assert out.steps.tolist() == [50, 50, 50]
    torch.testing.assert_close(out.images, torch.full_like(seed, 0.125), rtol=0, atol=1e-12)
    torch.testing.assert_close(
        inversion_loss(_identity, out.images, target), torch.full((3,), 0.75, dtype=torch.float64)
    )


def test_a_tolerance_stops_a_falling_loss_once_it_improves_too_little():
    # the same descent, tol 0.2: over the window ending at t the loss falls by 0.05 from 1 - 0.005 (t - 10), i.e.
    # by less than 20% once 0.05 <= 0.2 (1 - 0.005 (t - 10)), that is t <= 160: at the first check, t = 10
    target, seed = torch.full((2, 1, 4, 4), 0.5, dtype=torch.float64), torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    out = invert(_identity, target, seed, steps=50, step_size=0.01, window=10, tol=0.2)
    assert out.steps.tolist() == [10, 10]
    torch.testing.assert_close(out.images, torch.full_like(seed, 0.025), rtol=0, atol=1e-12)


def test_a_flat_loss_stops_after_one_window_and_returns_the_seed():
    target, seed = torch.zeros(2, 2, 4, 4), torch.zeros(2, 2, 4, 4)
    target[:, 1] = 1.0  # channel 1 rounds to 1 in the target, to 0 in the seed: loss 1, zero gradient
    out = invert(_mixed, target, seed, steps=1000, window=25, tol=0.01)
    assert out.steps.tolist() == [25, 25]
    assert torch.equal(out.images, seed)  # nothing lowered the loss: the lowest-loss iterate is the seed


def test_images_of_one_batch_stop_each_by_its_own_loss():
    target, seed = torch.zeros(4, 2, 4, 4), torch.zeros(4, 2, 4, 4)
    target[0::2, 0] = 0.5  # images 0 and 2: channel 0 falls towards 0.5 (as in the first test)
    target[1::2, 1] = 1.0  # images 1 and 3: flat
    out = invert(_mixed, target, seed, steps=40, step_size=0.01, window=10, tol=0.01, batch_size=3)
    assert out.steps.tolist() == [40, 10, 40, 10]
    assert torch.equal(out.images[1::2], seed[1::2])
    torch.testing.assert_close(out.images[0::2, 0], torch.full((2, 4, 4), 0.1), rtol=0, atol=1e-6)


def test_zero_steps_return_the_seeds():
    target, seed = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0)), torch.full((3, 1, 4, 4), 0.5)
    out = invert(_identity, target, seed, steps=0)
    assert torch.equal(out.images, seed) and out.steps.tolist() == [0, 0, 0]


def test_tol_zero_runs_every_moving_image_to_the_cap():
    target, seed = torch.full((2, 1, 4, 4), 0.5), torch.zeros(2, 1, 4, 4)
    out = invert(_identity, target, seed, steps=30, step_size=0.01, window=5, tol=0.0)
    assert out.steps.tolist() == [30, 30]
