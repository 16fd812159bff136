"""Projected gradient descent for adversarial *training* (Madry et al. 2018), Linf and L2.

This is the trainer's inner maximisation only; evaluations always use AutoAttack.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    threat_model: str,
    eps: float,
    steps: int,
    step_size: float,
    loss_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    init: str = "uniform",
) -> torch.Tensor:
    """Maximise ``loss_fn(model(x_adv))`` (default: summed cross-entropy) over the eps-ball around ``x``.

    x ``(N, C, H, W)`` in [0,1], y ``(N,)``; returns x_adv ``(N, C, H, W)`` in [0,1] within eps of x.
    ``init``: ``uniform`` (random start in the ball), ``small`` (TRADES: 0.001 * normal) or ``zero``.
    """
    if loss_fn is None:

        def loss_fn(logits: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(logits, y, reduction="sum")

    delta = _init_delta(x, threat_model, eps, init)
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = loss_fn(model(x + delta))
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            if threat_model == "Linf":
                delta = (delta + step_size * grad.sign()).clamp_(-eps, eps)
            else:
                delta = _project_l2(delta + step_size * _unit_l2(grad), eps)
            delta = (x + delta).clamp_(0, 1) - x
    return (x + delta).detach()


def _init_delta(x: torch.Tensor, threat_model: str, eps: float, init: str) -> torch.Tensor:
    if init == "zero":
        delta = torch.zeros_like(x)
    elif init == "small":
        delta = 0.001 * torch.randn_like(x)
    elif threat_model == "Linf":
        delta = torch.empty_like(x).uniform_(-eps, eps)
    else:
        radius = eps * torch.rand(len(x), 1, 1, 1, device=x.device, dtype=x.dtype)
        delta = _unit_l2(torch.randn_like(x)) * radius
    return ((x + delta).clamp(0, 1) - x).detach()


def _unit_l2(v: torch.Tensor) -> torch.Tensor:
    norms = v.flatten(1).norm(dim=1).clamp_min(1e-12)
    return v / norms.view(-1, *([1] * (v.dim() - 1)))


def _project_l2(delta: torch.Tensor, eps: float) -> torch.Tensor:
    norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    factor = (eps / norms).clamp(max=1.0)
    return delta * factor.view(-1, *([1] * (delta.dim() - 1)))
