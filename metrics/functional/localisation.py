"""Localisation: how much of an explanation falls on a ground-truth region.

Attributions ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)`` are reduced to a per-pixel map by summing over
channels; masks are ``(N, 1, H, W)`` or ``(N, H, W)``, bool (or 0/1). An empty mask gives 0.0 for every metric
here (nothing can be hit; Quantus returns NaN). The maps are used as given: pass non-negative maps (e.g.
``|a|``) to RMA, RRA and the pointing game, as Quantus (``abs=False``) does.

Sums are accumulated in float64 (float32 on MPS) and the results returned in the attributions' dtype, so they do
not depend on the summation order a device or SIMD width picks: a float32 sum of H*W terms is only accurate to
``~H*W * 2^-24`` relative in the worst case (3e-3 at 224x224), in an order-dependent way.
"""

from __future__ import annotations

import torch
from torch import Tensor

from metrics.functional._checks import check_positive_int, describe, pixel_mask


def _accumulation_dtype(t: Tensor) -> torch.dtype:
    return torch.float32 if t.device.type == "mps" else torch.float64


def _map_and_mask(attributions: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """The per-pixel map ``(N, H*W)`` in the accumulation dtype and the mask ``(N, H*W)``."""
    if not isinstance(attributions, Tensor) or attributions.ndim not in (3, 4) or not attributions.is_floating_point():
        raise ValueError(f"attributions must be a float tensor (N, C, H, W) or (N, H, W), got {describe(attributions)}")
    a = attributions.to(_accumulation_dtype(attributions))
    a = a.sum(dim=1) if a.ndim == 4 else a
    if a.shape[0] == 0:
        raise ValueError("attributions holds no examples (N = 0)")
    if not bool(torch.isfinite(a).all()):
        raise ValueError("attributions contains NaN or infinite values")
    n, h, w = a.shape
    m = pixel_mask(mask, n, h, w).to(a.device)
    return a.reshape(n, -1), m.reshape(n, -1)


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    """``num / den``, 0.0 where ``den == 0``."""
    zero = den == 0
    return torch.where(zero, torch.zeros_like(num), num / torch.where(zero, torch.ones_like(den), den))


def relevance_mass_accuracy(attributions: Tensor, mask: Tensor) -> Tensor:
    """Relevance Mass Accuracy (Arras et al. 2022), as Quantus: ``RMA = sum_{p in mask} a[p] / sum_p a[p]``.

    Signed attributions are used as given (Quantus ``abs=False``). All-zero attributions (total 0) or an empty
    mask give 0.0.

    Returns: ``(N,)``; in [0, 1] for non-negative maps.

    Example:
        >>> a = torch.tensor([[[1.0, 3.0], [0.0, 0.0]]]); m = torch.tensor([[[False, True], [False, False]]])
        >>> relevance_mass_accuracy(a, m)
        tensor([0.7500])
    """
    a, m = _map_and_mask(attributions, mask)
    inside = (a * m).sum(dim=1)
    return _safe_div(inside, a.sum(dim=1)).to(attributions.dtype)


def relevance_mass_ratio(attributions: Tensor, mask: Tensor) -> Tensor:
    """Positive relevance mass on the mask divided by the mask's share of the image; 1.0 = chance (a uniform map).

    ``ratio = RMA(a+) / (|mask| / (H * W))`` with ``a+ = max(a, 0)``: only positive evidence counts as mass (as
    in GridPG). On signed maps (integrated gradients from a random baseline) the signed total can be near 0,
    which would make the signed ratio unbounded and its sign meaningless (values like -20 were observed).

    Returns: ``(N,)`` in [0, H*W/|mask|]; 0.0 for an empty mask or no positive attribution.

    Example:
        >>> a = torch.tensor([[[1.0, 3.0], [0.0, 0.0]]]); m = torch.tensor([[[False, True], [False, False]]])
        >>> relevance_mass_ratio(a, m)
        tensor([3.])
    """
    a, m = _map_and_mask(attributions, mask)
    a = a.clamp_min(0)
    share = m.sum(dim=1).to(a.dtype) / m.shape[1]
    return _safe_div(_safe_div((a * m).sum(dim=1), a.sum(dim=1)), share).to(attributions.dtype)


def relevance_rank_accuracy(attributions: Tensor, mask: Tensor) -> Tensor:
    """Relevance Rank Accuracy (Arras et al. 2022): the share of the K = |mask| highest-attributed pixels that lie
    inside the mask.

    Ties at the K-th value are resolved in expectation over random tie-breaking: the tied pixels contribute
    ``(K - #above) * (#tied in mask / #tied)``. Without ties this is Quantus's value (its ``argsort`` breaks ties
    arbitrarily); a constant map gives the chance level ``|mask| / (H*W)``. Empty mask: 0.0.

    Returns: ``(N,)`` in [0, 1].

    Example:
        >>> a = torch.tensor([[[4.0, 3.0], [2.0, 1.0]]]); m = torch.tensor([[[True, False], [True, False]]])
        >>> relevance_rank_accuracy(a, m)
        tensor([0.5000])
    """
    a, m = _map_and_mask(attributions, mask)
    k = m.sum(dim=1)
    ordered = torch.sort(a, dim=1, descending=True).values
    kth = ordered.gather(1, (k - 1).clamp(min=0)[:, None])
    above, tied = a > kth, a == kth
    n_above = above.sum(dim=1)
    hits = (above & m).sum(dim=1).to(a.dtype)
    hits = hits + (k - n_above).to(a.dtype) * _safe_div((tied & m).sum(dim=1).to(a.dtype), tied.sum(dim=1).to(a.dtype))
    return _safe_div(hits, k.to(a.dtype)).to(attributions.dtype)


def pointing_game(attributions: Tensor, mask: Tensor) -> Tensor:
    """Pointing game (Zhang et al. 2018): 1.0 if the pixel of maximal attribution lies inside the mask, else 0.0.

    Several maximal pixels (ties) score the fraction of them inside the mask (the expected hit of a random
    choice among them), so a constant map scores ``|mask| / (H*W)``. Quantus (``weighted=False``, no tolerance
    in 0.6.0) scores 1 if any maximal pixel is inside; the two agree whenever the maximum is unique. Empty mask:
    0.0.

    Returns: ``(N,)`` in [0, 1].

    Example:
        >>> a = torch.tensor([[[0.0, 5.0], [1.0, 0.0]]]); m = torch.tensor([[[False, True], [False, False]]])
        >>> pointing_game(a, m)
        tensor([1.])
    """
    a, m = _map_and_mask(attributions, mask)
    top = a == a.max(dim=1, keepdim=True).values
    return _safe_div((top & m).sum(dim=1).to(a.dtype), top.sum(dim=1).to(a.dtype)).to(attributions.dtype)


def grid_pointing_game(attributions: Tensor, cell: Tensor, grid: tuple[int, int] = (2, 2)) -> Tensor:
    """Grid pointing game (Rao, Boehle and Schiele, CVPR 2022): the share of positive attribution that falls in
    the target cell of a ``grid`` of images (a composite of ``rows x cols`` images, the target class in one).

    ``GPG = sum_{p in cell} max(a[p], 0) / sum_p max(a[p], 0)`` with channels summed before the positive part.
    Cells are row-major; cell r spans rows ``[r*H//rows, (r+1)*H//rows)`` (likewise columns), so for a 2x2 grid
    this is Quantus's ``Focus`` with a one-hot quadrant vector (which adds 1e-9 to the denominator). No positive
    attribution gives 0.0 (Quantus's ``Focus`` value too). Chance level (a uniform map) is ``1 / (rows*cols)``.

    Args:
        attributions: ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)`` of the composite images.
        cell: int64 ``(N,)``, the target cell index in ``[0, rows*cols)``.
        grid: ``(rows, cols)``.

    Returns: ``(N,)`` in [0, 1].

    Example:
        >>> a = torch.tensor([[[1.0, 3.0], [-2.0, 0.0]]])
        >>> grid_pointing_game(a, torch.tensor([1]))
        tensor([0.7500])
    """
    if not isinstance(grid, tuple) or len(grid) != 2:
        raise ValueError(f"grid must be a (rows, cols) tuple, got {grid!r}")
    rows, cols = check_positive_int(grid[0], "grid[0]"), check_positive_int(grid[1], "grid[1]")
    if not isinstance(attributions, Tensor) or attributions.ndim not in (3, 4) or not attributions.is_floating_point():
        raise ValueError(f"attributions must be a float tensor (N, C, H, W) or (N, H, W), got {describe(attributions)}")
    a = attributions.to(_accumulation_dtype(attributions))
    a = a.sum(dim=1) if a.ndim == 4 else a
    n, h, w = a.shape
    if n == 0 or h < rows or w < cols:
        raise ValueError(f"attributions of shape {tuple(attributions.shape)} cannot hold a {rows}x{cols} grid")
    if not bool(torch.isfinite(a).all()):
        raise ValueError("attributions contains NaN or infinite values")
    if not isinstance(cell, Tensor) or cell.dtype != torch.int64 or tuple(cell.shape) != (n,):
        raise ValueError(f"cell must be an int64 tensor of shape ({n},), got {describe(cell)}")
    if bool(((cell < 0) | (cell >= rows * cols)).any()):
        raise ValueError(f"cell holds indices outside [0, {rows * cols})")
    cell = cell.to(a.device)
    row_of = torch.bucketize(
        torch.arange(h, device=a.device), torch.arange(1, rows, device=a.device) * h // rows, right=True
    )
    col_of = torch.bucketize(
        torch.arange(w, device=a.device), torch.arange(1, cols, device=a.device) * w // cols, right=True
    )
    cell_of = (row_of[:, None] * cols + col_of[None, :]).reshape(-1)
    positive = a.clamp(min=0).reshape(n, -1)
    inside = (positive * (cell_of[None, :] == cell[:, None])).sum(dim=1)
    return _safe_div(inside, positive.sum(dim=1)).to(attributions.dtype)
