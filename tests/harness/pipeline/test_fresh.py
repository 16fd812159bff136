"""The fresh worker's side of the statelessness check (harness/pipeline/fresh.py): agreement on argmax with ties
judged on softmax probabilities (unchanged by any shift or scaling of the logits), grid rounding toward the clean
image, the grid flag's null on honest models, and the order the workers must run in."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness.attack.sanity import grid_flags
from harness.pipeline.attack import probe_points
from harness.pipeline.fresh import FreshWorker, gradient_step, on_grid, settle, to_grid


def test_settle_stores_the_fresh_argmax_and_flags_real_disagreements_only():
    ours = np.array([0, 1, 2])
    fresh = np.array([[2.0, 1.0, 0.0], [1.0, 1.0 - 1e-7, 0.0], [5.0, 0.0, 0.0]])
    stored, differ, ties = settle(ours, fresh)
    assert stored.tolist() == [0, 0, 0]  # the fresh answer is stored, tie or not
    assert differ.tolist() == [False, False, True] and ties == 1


@pytest.mark.parametrize("transform", ["shift", "scale_up", "scale_down"])
def test_no_shift_or_scaling_of_the_logits_turns_a_disagreement_into_a_tie(transform):
    """Issue 25, case 1: adding 1e6 to every logit made every disagreement a "tie" under a tolerance relative to the
    largest logit; ties are judged on softmax probabilities relative to their spread instead."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 10)) * 5
    ours = (logits.argmax(1) + 1 + rng.integers(0, 9, 200)) % 10  # always another class than the fresh one
    tied = logits.copy()
    tied[np.arange(200), ours] = tied.max(1) - 1e-9 * np.abs(tied).max(1)  # within float rounding of the top
    change = {"shift": lambda z: z + 1e6, "scale_up": lambda z: z * 1e3, "scale_down": lambda z: z * 1e-6}[transform]
    _, differ, ties = settle(ours, change(logits))
    assert differ.all() and ties == 0
    _, differ, ties = settle(ours, change(tied))
    assert not differ.any() and ties == 200


def test_to_grid_rounds_toward_the_clean_image_inside_the_ball(fmnist_test):
    x = fmnist_test[0][:16]
    assert on_grid(x) and not on_grid(x + 1e-3)
    for threat, eps in (("Linf", 0.1), ("L2", 1.5)):
        points = probe_points(x, threat_model=threat, eps=eps, seed=0, key=0)
        clean = x.repeat_interleave(8, dim=0).numpy()
        rounded = to_grid(points, clean)
        assert on_grid(torch.as_tensor(rounded))
        delta, original = rounded.astype(np.float64) - clean, points.astype(np.float64) - clean
        assert (np.abs(delta) <= np.abs(original) + 1e-6).all() and (delta * original >= -1e-12).all()
        assert (np.abs(delta - original) < 1 / 255 + 1e-6).all()  # less than one step from the point
        norms = (
            np.abs(delta).reshape(len(delta), -1).max(1)
            if threat == "Linf"
            else np.linalg.norm(delta.reshape(len(delta), -1), axis=1)
        )
        assert norms.max() <= eps + 1e-6 and rounded.min() >= 0 and rounded.max() <= 1
    assert np.array_equal(to_grid(x.numpy(), x.numpy()), x.numpy())  # a point on the grid stays where it is


class _SwitchesOffGrid(nn.Module):
    """The standard model on the 1/255 grid, the adversarially trained one off it (issue 25, case 4)."""

    def __init__(self, on: nn.Module, off: nn.Module) -> None:
        super().__init__()
        self.on, self.off = on, off

    def forward(self, x):
        steps = x * 255
        grid = (steps - steps.round()).abs().flatten(1).amax(1) < 1e-3
        return torch.where(grid[:, None], self.on(x), self.off(x))


def _grid_counts(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """The fresh worker's grid comparison on the probes and one gradient step per image (as verify_chunks)."""
    corners = probe_points(x, threat_model="Linf", eps=0.1, seed=0, key=0)
    first = to_grid(corners[::8], x.numpy())
    start = torch.as_tensor(first).requires_grad_(True)
    logits = model(start)
    (grad,) = torch.autograd.grad(nn.functional.cross_entropy(logits, logits.argmax(1), reduction="sum"), start)
    step = gradient_step(x.numpy(), first, grad.sign().numpy(), threat_model="Linf", eps=0.1)
    owners = np.concatenate([np.arange(len(x)), np.repeat(np.arange(len(x)), 8)])
    points = np.concatenate([step, corners])
    rounded = to_grid(points, x.numpy()[owners])
    with torch.no_grad():
        off = model(torch.as_tensor(points)).argmax(1).numpy() == y.numpy()[owners]
        on = model(torch.as_tensor(rounded)).argmax(1).numpy() == y.numpy()[owners]
    return {"points": len(points), "to_wrong": int((off & ~on).sum()), "to_right": int((~off & on).sum())}


def test_the_grid_flag_is_not_raised_for_honest_models_and_is_for_a_switching_one(
    fmnist_test, standard_model, robust_model
):
    """The flag's null, on the shipped models (100 test images, 9 points each): rounding toward the clean image does
    not turn answers wrong more often than right for an honest model (a one-sided sign test at 1%; measured on 200
    images: standard 2 turned wrong and 15 right, PGD-AT 0 and 1, the switching model 434 and 69)."""
    x, y = fmnist_test[0][:100], fmnist_test[1][:100]
    for model in (standard_model, robust_model):
        counts = _grid_counts(model, x, y)
        assert grid_flags({"0": {"grid": counts}}) == [], counts
    counts = _grid_counts(_SwitchesOffGrid(standard_model, robust_model), x, y)
    assert [f["code"] for f in grid_flags({"0": {"grid": counts}})] == ["grid-inconsistent"], counts


def test_the_fresh_worker_starts_only_after_the_attacking_worker_has_exited():
    class Open:
        closed = False

    fresh = FreshWorker(None, None, None, {}, None, 10, 0, after=Open())
    with pytest.raises(RuntimeError, match="only after the attacking worker has exited"):
        fresh.logits(np.zeros((1, 1, 2, 2), np.float32), 0, 1)
