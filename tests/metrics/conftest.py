"""Fixtures for the metric tests: a few real Fashion-MNIST images, Saliency maps, toy models with known answers,
and Quantus-side helpers (numpy inputs, ``disable_warnings=True``, recording Quantus's random draws)."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest
import torch
from captum.attr import Saliency
from torch import nn


def saliency(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``|d logit_target / d x|`` (captum Saliency), shape of x."""
    return Saliency(model).attribute(x, target=target, abs=True).detach()


def quantus_saliency(model, inputs, targets, **kwargs) -> np.ndarray:
    """The same explanation in Quantus's explain_func convention (numpy in, numpy out), in the model's dtype."""
    params = list(model.parameters())
    x = torch.as_tensor(np.asarray(inputs), dtype=params[0].dtype if params else torch.float32)
    return saliency(model, x, torch.as_tensor(np.asarray(targets), dtype=torch.int64)).numpy()


@contextlib.contextmanager
def record_numpy_random(name: str):
    """Record every array returned by ``np.random.<name>`` while the block runs (Quantus's own draws)."""
    original = getattr(np.random, name)
    calls: list[np.ndarray] = []

    def recording(*args, **kwargs):
        value = original(*args, **kwargs)
        calls.append(np.asarray(value))
        return value

    setattr(np.random, name, recording)
    try:
        yield calls
    finally:
        setattr(np.random, name, original)


def run_quantus(metric, model, x, y, a=None, s=None, **kwargs) -> np.ndarray:
    """Call a Quantus metric on numpy copies of torch inputs; per-example scores as float64 numpy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = metric(
            model=model,
            x_batch=x.numpy(),
            y_batch=y.numpy(),
            a_batch=None if a is None else a.numpy(),
            s_batch=None if s is None else s.numpy(),
            device="cpu",
            **kwargs,
        )
    return out if isinstance(out, dict) else np.asarray(out, dtype=np.float64)


class LinearScore(nn.Module):
    """Two-class toy model with logits ``[w . x, 0]``: the class-0 probability is ``sigmoid(w . x)``."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x * self.weight).flatten(1).sum(dim=1)
        return torch.stack([z, torch.zeros_like(z)], dim=1)


class ConstantLogits(nn.Module):
    """Ignores its input; returns ``logits`` for every image (NaN logits make a model that 'returns NaN')."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.register_buffer("logits", torch.tensor(logits))
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(x.shape[0], -1) * self.scale + 0 * x.flatten(1).sum(1, keepdim=True)


@pytest.fixture(scope="session")
def images(fmnist_test) -> tuple[torch.Tensor, torch.Tensor]:
    """The first 16 Fashion-MNIST test images (N, 1, 28, 28) and labels."""
    x, y = fmnist_test
    return x[:16].clone(), y[:16].clone()


@pytest.fixture(scope="session")
def standard_saliency(standard_model, images) -> torch.Tensor:
    return saliency(standard_model, *images)


@pytest.fixture(scope="session")
def robust_saliency(robust_model, images) -> torch.Tensor:
    return saliency(robust_model, *images)
