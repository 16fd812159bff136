"""Fast adversarial training (Wong, Rice, Kolter 2020, "Fast is better than free"): FGSM with a random start, and
the catastrophic-overfitting check that goes with it.

FGSM-RS costs about 2 gradient passes per training image (one for the step, one for the weights) instead of PGD-10's
11. Its failure mode is *catastrophic overfitting*: within an epoch the model's PGD accuracy collapses to ~0 while
its FGSM accuracy rises. The remedy is early stopping on PGD accuracy measured on held-out images
(:class:`OverfitMonitor`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

ALPHA_OVER_EPS = 1.25  # Wong et al.'s step size: alpha = 1.25 eps


def random_start(
    x: torch.Tensor, *, threat_model: str, eps: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A random perturbation in the eps-ball: U[-eps, eps] per pixel (Linf), or a uniformly random direction
    scaled to a U[0, eps] radius (L2). x ``(N, C, H, W)``; returns delta ``(N, C, H, W)`` (not clipped to [0,1])."""
    if threat_model == "Linf":
        return torch.empty_like(x).uniform_(-eps, eps, generator=generator)
    if threat_model != "L2":
        raise ValueError(f"threat_model must be 'Linf' or 'L2', got {threat_model!r}")
    direction = _unit_l2(torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device))
    radius = eps * torch.rand((len(x), 1, 1, 1), generator=generator, dtype=x.dtype, device=x.device)
    return direction * radius


def fgsm_rs(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    threat_model: str,
    eps: float,
    alpha: float | None = None,
    start: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """FGSM from a random start (Wong et al. 2020): the adversarial training example for ``x``.

    ``delta = project_eps(start + alpha * step(grad))``, then ``x + delta`` clipped to [0,1]. ``step`` is the
    gradient's sign (Linf) or its per-example L2-normalised direction (L2), the gradient that of the summed
    cross-entropy at ``x + start``; ``project_eps`` clamps to [-eps, eps] (Linf) or rescales into the L2 ball.
    ``alpha`` defaults to 1.25 eps; ``start`` to :func:`random_start` (drawn from ``generator``).

    x ``(N, C, H, W)`` in [0,1], y ``(N,)`` int64; returns x_adv ``(N, C, H, W)`` in [0,1] within eps of x.
    """
    alpha = ALPHA_OVER_EPS * eps if alpha is None else alpha
    if start is None:
        start = random_start(x, threat_model=threat_model, eps=eps, generator=generator)
    delta = ((x + start).clamp(0, 1) - x).detach().requires_grad_(True)
    loss = F.cross_entropy(model(x + delta), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, delta)
    with torch.no_grad():
        if threat_model == "Linf":
            delta = (delta + alpha * grad.sign()).clamp(-eps, eps)
        else:
            delta = _project_l2(delta + alpha * _unit_l2(grad), eps)
        return (x + delta).clamp(0, 1).detach()


def _unit_l2(v: torch.Tensor) -> torch.Tensor:
    norms = v.flatten(1).norm(dim=1).clamp_min(1e-12)
    return v / norms.view(-1, *([1] * (v.dim() - 1)))


def _project_l2(delta: torch.Tensor, eps: float) -> torch.Tensor:
    norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    return delta * (eps / norms).clamp(max=1.0).view(-1, *([1] * (delta.dim() - 1)))


@dataclass
class OverfitMonitor:
    """Catastrophic-overfitting check: after every epoch, :meth:`update` with the epoch's PGD accuracy on held-out
    training images. It keeps a copy of the best state so far; when an epoch's accuracy falls below ``drop`` times
    the best of the earlier epochs, :meth:`update` returns True (stop), and :meth:`restore` loads the best state.

    ``record()`` is what the submission's METADATA stores: None, or ``{"epoch", "pgd_acc", "best_epoch",
    "best_pgd_acc", "restored_epoch"}`` (epochs count from 1).
    """

    drop: float = 0.5
    history: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    best_state: dict[str, torch.Tensor] | None = None
    collapsed_at: int | None = None

    @property
    def best_acc(self) -> float | None:
        return None if self.best_epoch is None else self.history[self.best_epoch - 1]

    def update(self, acc: float, model: nn.Module) -> bool:
        """Record the next epoch's accuracy; True when it collapsed (training should stop and restore)."""
        self.history.append(float(acc))
        epoch = len(self.history)
        best = self.best_acc
        if best is not None and acc < self.drop * best:
            self.collapsed_at = epoch
            return True
        if best is None or acc >= best:
            self.best_epoch = epoch
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return False

    def restore(self, model: nn.Module) -> None:
        """Load the best epoch's state into ``model``."""
        if self.best_state is None:
            raise ValueError("no epoch has been recorded yet")
        model.load_state_dict(self.best_state)

    def record(self) -> dict[str, Any] | None:
        if self.collapsed_at is None:
            return None
        return {
            "epoch": self.collapsed_at,
            "pgd_acc": self.history[self.collapsed_at - 1],
            "best_epoch": self.best_epoch,
            "best_pgd_acc": self.best_acc,
            "restored_epoch": self.best_epoch,
        }

    def state(self) -> dict[str, Any]:
        """Everything needed to resume monitoring (for the trainer's per-epoch checkpoints)."""
        return {
            "drop": self.drop,
            "history": list(self.history),
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "collapsed_at": self.collapsed_at,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> OverfitMonitor:
        return cls(**state)
