"""Verification of adversarial examples: each must lie in [0,1] and inside the threat model's eps-ball."""

from __future__ import annotations

import torch

from harness.core.errors import HarnessError


def verify_adversarial(
    x: torch.Tensor, x_adv: torch.Tensor, *, threat_model: str, eps: float, atol: float = 1e-6
) -> torch.Tensor:
    """Check ``x_adv`` lies in [0,1] and within ``eps + atol`` of ``x`` per example; return the norms ``(N,)``.

    Raises:
        HarnessError: naming how many examples violate which constraint.
    """
    if x_adv.shape != x.shape:
        raise HarnessError(f"attack returned shape {tuple(x_adv.shape)} for inputs {tuple(x.shape)}", _BUG)
    if not torch.isfinite(x_adv).all():
        raise HarnessError("attack returned non-finite adversarial examples", _BUG)
    outside = ((x_adv < 0) | (x_adv > 1)).flatten(1).any(1)
    if outside.any():
        raise HarnessError(f"attack returned {int(outside.sum())} adversarial examples outside [0,1]", _BUG)
    delta = (x_adv.double() - x.double()).flatten(1)
    norms = delta.abs().amax(1) if threat_model == "Linf" else delta.norm(dim=1)
    over = norms > eps + atol
    if over.any():
        raise HarnessError(
            f"attack returned {int(over.sum())} adversarial examples outside the {threat_model} ball "
            f"(eps {eps:g}, largest norm {norms.max().item():.6g})",
            _BUG,
        )
    return norms


_BUG = "the run was not stored; this is a bug in the attack or in the model's input handling, please report it"
