"""Argument validation for metrics.stats: every check raises ``ValueError`` naming the argument."""

from __future__ import annotations

from typing import Literal

import numpy as np

Alternative = Literal["two-sided", "greater", "less"]
ALTERNATIVES: tuple[str, ...] = ("two-sided", "greater", "less")


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"


def as_array(values: object, name: str, *, ndim: int, allow_nan: bool = False) -> np.ndarray:
    """``values`` (array-like or tensor) as a float64 numpy array with ``ndim`` dimensions, finite (NaN allowed
    only with ``allow_nan``; infinities never)."""
    if hasattr(values, "detach"):  # a torch tensor, without importing torch here
        values = values.detach().cpu().double().numpy()
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers, got {_describe(values)}") from None
    if arr.ndim != ndim:
        shape = "(N,)" if ndim == 1 else "(" + ", ".join("SNDK"[:ndim]) + ")"
        raise ValueError(f"{name} must be {ndim}-dimensional {shape}, got shape {arr.shape}")
    bad = np.isinf(arr) if allow_nan else ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} contains {'infinite' if allow_nan else 'NaN or infinite'} values")
    return arr


def check_same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{name_a} and {name_b} must have the same length, got {a.shape[0]} and {b.shape[0]}")


def check_level(level: float) -> float:
    if not (isinstance(level, int | float) and 0 < level < 1):
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    return float(level)


def check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_alternative(alternative: str) -> str:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    return alternative


def tail_count(null: np.ndarray, observed: float, alternative: str, tol: float) -> int:
    """How many null statistics are at least as extreme as ``observed`` in the direction of ``alternative``;
    ``tol`` absorbs rounding so that ties with the observed value count as extreme."""
    if alternative == "greater":
        return int(np.count_nonzero(null >= observed - tol))
    if alternative == "less":
        return int(np.count_nonzero(null <= observed + tol))
    return int(np.count_nonzero(np.abs(null) >= abs(observed) - tol))
