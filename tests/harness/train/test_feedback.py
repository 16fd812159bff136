"""harness.train.feedback: the running mean loss is the mean of every loss of the epoch (not the last one shown),
and the per-epoch line's time left is the mean epoch time times the epochs left."""

from __future__ import annotations

import math

import torch

from harness.train.feedback import RunningMean, epoch_summary, eta


def test_the_running_mean_is_the_mean_of_every_loss_added():
    running = RunningMean()
    assert math.isnan(running.mean)
    losses = [torch.tensor(2.302, requires_grad=True) * 1.0, torch.tensor(1.5), 0.7]
    for loss in losses:
        running.add(loss)
    assert running.count == 3 and running.mean == torch.tensor(2.302 + 1.5 + 0.7).item() / 3
    assert not isinstance(running.total, torch.Tensor) or not running.total.requires_grad  # no graph kept


def test_time_left_and_the_epoch_line():
    assert eta([30.0, 50.0], 4) == 160.0 and eta([], 4) == 0.0 and eta([10.0], 0) == 0.0
    line = epoch_summary(1, 3, 0.5, 100.0, 190.0, [100.0], ", PGD-10 accuracy 0.600")
    assert (
        line
        == "epoch 1/3: mean loss 0.500, 1.7 min (CPU 3.2 min), PGD-10 accuracy 0.600; about 3.3 min left (2 epochs)"
    )
