"""A run's stored scores as the leaderboard reads them, and the selection functions that pair them: the
per-example values two scores (or several models' scores) share, aligned by what each value belongs to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness import store

Pair = tuple[str, str]  # (attribution method, metric): what a score is of


@dataclass(frozen=True)
class Score:
    """One stored score of a run: mean, 95% interval, n, per-example values and what each value belongs to
    (``keys``: image indices, or GridPG composite cells; None for runs stored before keys were recorded)."""

    mean: float | None
    low: float | None
    high: float | None
    n: int
    na: str | None = None
    values: tuple[float, ...] = ()
    keys: tuple[Any, ...] | None = None
    details: dict[str, Any] = field(default_factory=dict, compare=False)


def stored_score(m: store.MetricRecord) -> Score:
    """The :class:`Score` of a stored metric row (raises TypeError or ValueError when a field is malformed)."""
    details = m.details if isinstance(m.details, dict) else {}
    keys = details.get("index", details.get("rows"))
    return Score(
        mean=None if m.mean is None else float(m.mean),
        low=m.ci_low,
        high=m.ci_high,
        n=int(m.n),
        na=details.get("not_applicable"),
        values=tuple(float(v) for v in (m.values or [])),
        keys=tuple(keys) if isinstance(keys, list) and len(keys) == len(m.values or []) else None,
        details=details,
    )


def aligned(a: Score, b: Score) -> tuple[np.ndarray, np.ndarray] | None:
    """The per-example values ``(k,)`` of two scores of one run on the examples both have (by key; by position when
    neither has keys and the lengths agree), or None when they cannot be paired."""
    if a.keys is None or b.keys is None:
        if a.keys is None and b.keys is None and len(a.values) == len(b.values):
            return np.asarray(a.values), np.asarray(b.values)
        return None
    where = {k: i for i, k in enumerate(b.keys)}
    common = [(i, where[k]) for i, k in enumerate(a.keys) if k in where]
    return np.asarray([a.values[i] for i, _ in common]), np.asarray([b.values[j] for _, j in common])


def common_matrix(scores: list[Score], *, positional: bool = True) -> np.ndarray | None:
    """``(models, examples)`` values of several models' scores on the examples every model has, in the first
    score's order (by key). Keyless scores (runs stored before keys were recorded) pair by position when
    ``positional`` (values belong to the same test images in the same order) and all lengths agree; else None."""
    if any(s.keys is None for s in scores):
        if positional and all(s.keys is None for s in scores) and len({len(s.values) for s in scores}) == 1:
            return np.asarray([s.values for s in scores])
        return None
    common = set(scores[0].keys)
    for s in scores[1:]:
        common &= set(s.keys)
    order = [k for k in scores[0].keys if k in common]
    return np.asarray([[dict(zip(s.keys, s.values, strict=True))[k] for k in order] for s in scores])
