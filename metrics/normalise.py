"""A perturbation-curve score placed between the model's own floor and ceiling (metrics/bounds.py), so that models
that react more or less strongly to the perturbation itself are compared on what their attributions do.

On a set S of images scored for one model: ``N = mean_S(m - f) / mean_S(c - f)`` with m the method's, f the floor's
and c the ceiling's per-image values: 0 = no better than a random order, 1 = as good as the best order found for the
model. The stored ceiling is what occlusion finds (metrics/bounds.py), which a method can beat; :func:`best_found`
raises it, per image, to the best of it and every order scored on that model and image (the methods' and the
controls'), so that no scored order lies above the ceiling. The same formula serves
lower-is-better metrics (deletion AUC): numerator and denominator change sign together. Its per-image linearisation
``n_i = (m_i - f_i) / mean_S(c - f)`` has mean N, for paired tests between methods or models on the same images (the
denominator is the model's, fixed on S). A model whose output probabilities are mixed with the uniform distribution,
``p -> lambda p + (1 - lambda) / K``, scales m, f and c by lambda (plus a common constant for the single-curve
metrics) and leaves N unchanged, whereas the raw scores shrink by lambda.

Numpy in, floats out, like ``metrics.stats``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Normalised:
    """``value`` = N; ``per_image`` = n_i ``(len(S),)`` (NaN where an input was NaN); ``room`` = ``mean_S(c - f)``;
    ``n`` = images used; ``reason`` = why N is NaN ("" when it is a number)."""

    value: float
    per_image: np.ndarray
    room: float
    n: int
    reason: str = ""


def _vector(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per image), got shape {arr.shape}")
    if bool(np.isinf(arr).any()):
        raise ValueError(f"{name} contains infinite values")
    return arr


def best_found(
    ceiling: Sequence[float] | np.ndarray,
    candidates: Sequence[Sequence[float]] | np.ndarray,
    *,
    higher_is_better: bool,
) -> np.ndarray:
    """Per image the best, in the metric's direction, of the ceiling and the candidates' values (other orders scored
    on the same model, images, fill and draws): the ceiling of the best order found among them all.

    A NaN candidate value is passed over; an image whose ceiling is NaN stays NaN (it had no ceiling search).

    Args:
        ceiling: float ``(N,)``; candidates: float ``(C, N)`` (C may be 0).
        higher_is_better: the metric's direction.

    Returns:
        float64 ``(N,)``.

    Raises:
        ValueError: a ceiling that is not one-dimensional, candidates not ``(C, N)``, infinite values.

    Example:
        >>> best_found([0.5, 0.9, float("nan")], [[0.6, 0.2, 0.1], [float("nan"), 0.8, 0.3]], higher_is_better=True)
        array([0.6, 0.9, nan])
    """
    c = _vector(ceiling, "ceiling")
    others = np.asarray(candidates, dtype=np.float64)
    if others.size == 0:
        others = others.reshape(0, c.size)
    if others.ndim != 2 or others.shape[1] != c.size:
        raise ValueError(f"candidates must be (C, {c.size}), one row per order, got shape {others.shape}")
    if bool(np.isinf(others).any()):
        raise ValueError("candidates contain infinite values")
    stacked = np.vstack([c[None], others])
    pick = np.fmax.reduce if higher_is_better else np.fmin.reduce
    return np.where(np.isnan(c), np.nan, pick(stacked, axis=0))


def normalised_score(
    method: Sequence[float] | np.ndarray,
    floor: Sequence[float] | np.ndarray,
    ceiling: Sequence[float] | np.ndarray,
    *,
    higher_is_better: bool,
) -> Normalised:
    """The method's score placed between the model's floor and ceiling on the images S given (see module doc).

    Images where any of the three values is NaN are left out of both means (``n`` counts the others). Refused
    (``value`` and ``per_image`` NaN, with the ``reason``) when no image is left, or when ``mean_S(c - f)`` is not
    positive in the metric's direction (> 0 for higher-is-better, < 0 for lower-is-better): there is then no room
    between floor and ceiling to place the method in.

    Args:
        method, floor, ceiling: float ``(len(S),)`` each, aligned by image (NaN allowed, infinities not).
        higher_is_better: the metric's direction.

    Returns:
        a :class:`Normalised`.

    Raises:
        ValueError: arrays that are not one-dimensional, of different lengths, or with infinite values.

    Example:
        >>> r = normalised_score([0.3, 0.5], [0.1, 0.1], [0.5, 0.9], higher_is_better=True)
        >>> round(r.value, 6), r.per_image.round(6).tolist(), round(r.room, 6)
        (0.5, [0.333333, 0.666667], 0.6)
    """
    m, f, c = _vector(method, "method"), _vector(floor, "floor"), _vector(ceiling, "ceiling")
    if not m.shape == f.shape == c.shape:
        raise ValueError(f"method, floor and ceiling must have the same length, got {m.size}, {f.size}, {c.size}")
    complete = ~(np.isnan(m) | np.isnan(f) | np.isnan(c))
    n = int(complete.sum())
    nan = np.full(m.shape, np.nan)
    if n == 0:
        return Normalised(float("nan"), nan, float("nan"), 0, "no image has a method, floor and ceiling value")
    room = float(np.mean(c[complete] - f[complete]))
    if not (room > 0 if higher_is_better else room < 0):
        direction = "above" if higher_is_better else "below"
        return Normalised(
            float("nan"),
            nan,
            room,
            n,
            f"the ceiling is not {direction} the floor on average (mean ceiling - floor = {room:.3g}): no room to "
            "place a method in",
        )
    per_image = np.where(complete, (m - f) / room, np.nan)
    return Normalised(float(np.mean(per_image[complete])), per_image, room, n)
