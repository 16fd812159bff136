"""The model contract, checked on a few clean test images before any attack."""

from __future__ import annotations

import torch
from torch import nn

from harness.errors import HarnessError


@torch.no_grad()
def check_contract(model: nn.Module, x: torch.Tensor, *, num_classes: int, device: torch.device) -> None:
    """Raise a HarnessError unless ``model(x)`` is a finite ``(N, num_classes)`` float tensor."""
    try:
        out = model(x.to(device))
    except Exception as exc:
        raise HarnessError(
            f"model forward failed on a batch of shape {tuple(x.shape)}: {type(exc).__name__}: {exc}",
            "the model must accept float images in [0,1] of the data set's shape",
        ) from None
    if not isinstance(out, torch.Tensor):
        raise HarnessError(f"model returned {type(out).__name__}, not a tensor", "return a logits tensor")
    if tuple(out.shape) != (len(x), num_classes):
        raise HarnessError(
            f"model output has shape {tuple(out.shape)}, expected ({len(x)}, {num_classes})",
            "return one row of logits per image, one column per class",
        )
    if not torch.isfinite(out).all():
        raise HarnessError("model returned NaN or infinite outputs on clean images", "fix the model's forward")
