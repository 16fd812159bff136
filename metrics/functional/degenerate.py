"""Degenerate attribution maps: all-zero, constant or non-finite explanations, detected per example.

On such a map most metrics are undefined (a rank correlation of a constant, the Gini index of zeros, a curve
ordered only by tie-breaking), and the conventions that replace 0/0 by a number (0.0 for a constant Spearman
correlation) would score it as if it were an explanation. Callers drop those examples or report n/a.
"""

from __future__ import annotations

from enum import IntEnum

import torch
from torch import Tensor

from metrics.functional._checks import describe


class Degenerate(IntEnum):
    """Per-example code of :func:`degenerate_maps`; the names are the keys of :func:`count_degenerate`."""

    ok = 0  # at least two different finite values
    zero = 1  # every element is 0 (or -0)
    constant = 2  # every element equals the same finite, non-zero value
    non_finite = 3  # some element is NaN or +-inf (checked first)


DEGENERATE_KINDS: tuple[str, ...] = ("zero", "constant", "non_finite")


def degenerate_maps(attributions: Tensor) -> Tensor:
    """Which attribution maps are degenerate, one :class:`Degenerate` code per example.

    Over all elements of each example (channels included): any NaN/inf gives ``non_finite`` (3); else all
    elements 0 gives ``zero`` (1); else all elements equal gives ``constant`` (2); else ``ok`` (0). Exact
    comparisons: a map of tiny but different values is ``ok``.

    Args:
        attributions: float ``(N, ...)``, e.g. ``(N, C, H, W)``, N >= 1, at least one element per example.

    Returns:
        int64 ``(N,)`` codes on the device of ``attributions``.

    Raises:
        ValueError: if attributions is not a float tensor ``(N, ...)`` with non-empty examples.

    Example:
        >>> maps = torch.tensor([[0.0, 1.0], [0.0, -0.0], [2.0, 2.0], [1.0, float("nan")]])
        >>> degenerate_maps(maps)
        tensor([0, 1, 2, 3])
    """
    if not isinstance(attributions, Tensor) or attributions.ndim < 2 or not attributions.is_floating_point():
        raise ValueError(f"attributions must be a float tensor (N, ...), got {describe(attributions)}")
    if attributions.shape[0] == 0 or attributions[0].numel() == 0:
        raise ValueError(f"attributions must hold N >= 1 non-empty examples, got shape {tuple(attributions.shape)}")
    a = attributions.flatten(1)
    non_finite = ~torch.isfinite(a).all(dim=1)
    zero = (a == 0).all(dim=1)
    constant = (a == a[:, :1]).all(dim=1)
    codes = torch.full((a.shape[0],), int(Degenerate.ok), dtype=torch.int64, device=a.device)
    codes[constant] = int(Degenerate.constant)
    codes[zero] = int(Degenerate.zero)
    codes[non_finite] = int(Degenerate.non_finite)
    return codes


def count_degenerate(codes: Tensor) -> dict[str, int]:
    """Counts of each degenerate kind in ``codes`` ``(N,)`` from :func:`degenerate_maps`, e.g.
    ``{"zero": 3, "constant": 0, "non_finite": 0}`` (the ``ok`` maps are not counted)."""
    return {kind: int((codes == int(Degenerate[kind])).sum()) for kind in DEGENERATE_KINDS}
