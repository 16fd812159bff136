"""Multiplicity-adjusted p-values for a family of tests: Holm (family-wise error rate) and Benjamini-Hochberg
(false discovery rate). NaN p-values (tests that could not be run) are left out of the family and stay NaN.

Reject hypothesis i at level alpha when its adjusted p-value is <= alpha.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from metrics.stats._checks import as_array


def _family(p_values: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = as_array(p_values, "p_values", ndim=1, allow_nan=True)
    finite = ~np.isnan(p)
    if ((p[finite] < 0) | (p[finite] > 1)).any():
        raise ValueError("p_values must lie in [0, 1] (or be NaN)")
    return p, finite


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (controls the family-wise error rate under any dependence).

    With the m non-NaN p-values sorted, ``p_(1) <= ... <= p_(m)``:
    ``p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``.

    Args:
        p_values: float ``(K,)`` in [0, 1]; NaN entries are excluded (m counts only the others).

    Returns:
        float64 ``(K,)``: adjusted p-values in the input order, NaN where the input is NaN.

    Raises:
        ValueError: not 1-D, infinite, or outside [0, 1].

    Example:
        >>> holm([0.01, 0.04, 0.03, 0.005, float("nan")]).tolist()
        [0.03, 0.06, 0.06, 0.02, nan]
    """
    p, finite = _family(p_values)
    out = np.full(p.shape, np.nan)
    q = p[finite]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    steps = np.minimum(1.0, (m - np.arange(m)) * q[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(steps)
    out[finite] = adjusted
    return out


def benjamini_hochberg(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values (controls the false discovery rate for independent or
    positively dependent tests).

    With the m non-NaN p-values sorted, ``p_(1) <= ... <= p_(m)``:
    ``p~_(i) = min_{j >= i} min(1, m p_(j) / j)``.

    Args:
        p_values: float ``(K,)`` in [0, 1]; NaN entries are excluded (m counts only the others).

    Returns:
        float64 ``(K,)``: adjusted p-values in the input order, NaN where the input is NaN.

    Raises:
        ValueError: not 1-D, infinite, or outside [0, 1].

    Example:
        >>> benjamini_hochberg([0.01, 0.04, 0.03, 0.005, float("nan")]).tolist()
        [0.02, 0.04, 0.04, 0.02, nan]
    """
    p, finite = _family(p_values)
    out = np.full(p.shape, np.nan)
    q = p[finite]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    steps = np.minimum(1.0, m * q[order] / np.arange(1, m + 1))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum.accumulate(steps[::-1])[::-1]
    out[finite] = adjusted
    return out


__all__ = ["benjamini_hochberg", "holm"]
