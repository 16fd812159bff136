"""Calling a user's explanation function in chunks."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from metrics.functional._checks import describe
from metrics.functional._perturb import chunks

ExplainFn = Callable[[nn.Module, Tensor, Tensor], Tensor]


def explain_in_chunks(explain_fn: ExplainFn, model: nn.Module, x: Tensor, target: Tensor, batch_size: int) -> Tensor:
    """``explain_fn(model, x_chunk, target_chunk)`` over chunks of ``batch_size``, detached and concatenated
    ``(N, ...)``; raises ``ValueError`` if it returns a wrong batch size or NaN/inf."""
    if not callable(explain_fn):
        raise ValueError(f"explain_fn must be callable (model, x, target) -> attributions, got {describe(explain_fn)}")
    parts = []
    for start, stop in chunks(x.shape[0], batch_size):
        a = explain_fn(model, x[start:stop], target[start:stop])
        if not isinstance(a, Tensor) or a.ndim < 2 or a.shape[0] != stop - start:
            raise ValueError(
                f"explain_fn must return a tensor (B, ...) for a batch of {stop - start}, got {describe(a)}"
            )
        parts.append(a.detach().to(x.device))
    out = torch.cat(parts)
    if not bool(torch.isfinite(out).all()):
        raise ValueError("explain_fn returned NaN or infinite attributions")
    return out
