"""Batched statistics along the last dimension: Pearson, average ranks, Spearman."""

from __future__ import annotations

import torch
from torch import Tensor

from metrics.functional._checks import describe


def _stat_dtype(t: Tensor) -> torch.dtype:
    # float64 where the device has it (CPU, CUDA); MPS only has float32.
    return torch.float32 if t.device.type == "mps" else torch.float64


def pearson(a: Tensor, b: Tensor) -> Tensor:
    """Pearson correlation of ``a`` and ``b`` ``(..., n)`` along the last dim -> ``(...)``, computed in float64.

    A row that is constant in ``a`` or in ``b`` (correlation undefined; scipy returns NaN) gives 0.0.
    """
    dtype = _stat_dtype(a)
    a64, b64 = a.to(dtype), b.to(dtype)
    da = a64 - a64.mean(dim=-1, keepdim=True)
    db = b64 - b64.mean(dim=-1, keepdim=True)
    num = (da * db).sum(dim=-1)
    den = torch.sqrt((da * da).sum(dim=-1) * (db * db).sum(dim=-1))
    constant = (a == a[..., :1]).all(dim=-1) | (b == b[..., :1]).all(dim=-1)
    r = torch.where(constant, torch.zeros_like(num), num / torch.where(constant, torch.ones_like(den), den))
    return r.clamp(-1.0, 1.0)


def rankdata(a: Tensor) -> Tensor:
    """Average ranks (1-based, ties share the mean of their positions, as ``scipy.stats.rankdata``) along the last
    dim of ``a`` ``(..., n)``; float64 (float32 on MPS)."""
    n = a.shape[-1]
    flat = a.reshape(-1, n)
    values, order = torch.sort(flat, dim=-1, stable=True)
    pos = torch.arange(n, device=a.device).expand_as(order)
    starts = torch.ones_like(values, dtype=torch.bool)
    starts[:, 1:] = values[:, 1:] != values[:, :-1]
    ends = torch.ones_like(starts)
    ends[:, :-1] = starts[:, 1:]
    first = torch.where(starts, pos, torch.zeros_like(pos)).cummax(dim=-1).values
    last = torch.where(ends, pos, torch.full_like(pos, n)).flip(-1).cummin(dim=-1).values.flip(-1)
    dtype = _stat_dtype(a)
    avg = (first + last).to(dtype) / 2 + 1
    ranks = torch.empty_like(avg).scatter_(-1, order, avg)
    return ranks.reshape(a.shape)


def spearman(a: Tensor, b: Tensor) -> Tensor:
    """Per-example Spearman rank correlation of two batches of maps.

    ``rho_i = pearson(rank(a_i), rank(b_i))`` over all elements of each example, with average ranks for ties
    (``scipy.stats.spearmanr``). An example whose ``a`` or ``b`` is constant gives 0.0 (scipy: NaN).

    Args:
        a: float ``(N, ...)``.
        b: float, same shape as ``a``.

    Returns:
        ``(N,)`` in [-1, 1], dtype of ``a``.

    Raises:
        ValueError: if the shapes differ, N = 0, or an input holds NaN/inf.

    Example:
        >>> spearman(torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([[10.0, 20.0, 20.0, 30.0]]))
        tensor([0.9487])
    """
    if not isinstance(a, Tensor) or not isinstance(b, Tensor) or a.shape != b.shape:
        raise ValueError(f"a and b must be tensors of the same shape, got {describe(a)} and {describe(b)}")
    if a.ndim < 2 or a.shape[0] == 0 or a[0].numel() == 0:
        raise ValueError(f"a and b must have shape (N, ...) with N >= 1 and at least one element, got {tuple(a.shape)}")
    for name, t in (("a", a), ("b", b)):
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or infinite values")
    out_dtype = a.dtype if a.is_floating_point() else torch.float32
    return pearson(rankdata(a.flatten(1)), rankdata(b.flatten(1))).to(out_dtype)
