"""The no-op control of feature visualisation: each result against the unmoved seeds it started from.

Not moving at all already scores something: another test image has SSIM ~0.06 with the target it seeds, the
Gaussian class seeds have an FID of several hundred. That is feature visualisation's chance level, so every
headline score is compared with the same score of the seeds (the *no-op*), on the same seeds:

- per-example scores (inversion SSIM, PSNR, reference-feature distance; judge accuracy): :func:`compare_paired`,
  the mean paired difference result - no-op with a paired interval over targets (Student t below 30 targets,
  percentile bootstrap from 30; for inversion the two seed kinds of a target are averaged first: they share the
  target, so they are not independent);
- FID: :func:`fid_with_noop`, ``FID(generated, real) - FID(seeds, real)`` with a bootstrap interval that resamples
  the (generated, seed) pairs jointly and the real set, shared by both FIDs of a replicate.

A result *beats* its no-op when the 95% interval of the difference lies entirely on the metric's better side of 0
(:func:`beats_noop`); a score that does not beat its no-op describes the seeds, not the model, and gets no
verdict. :func:`noop_gain` places a result between its no-op (0) and a perfect score (1); the seeds being the
same for every model of a board, it is an affine rescaling of the difference, comparable across models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from metrics.stats import paired_comparison
from metrics.stats.fid import _prefix_fids  # the batched FID replicates of metrics.stats.fid.fid_interval

LEVEL = 0.95


@dataclass(frozen=True)
class NoopComparison:
    """A result against its no-op: the no-op's score, ``diff`` = result - no-op with its interval ``(low, high)``,
    whether the result beats the no-op, the gain (None where the score has no finite perfect value), and the
    one-sided sign-flip p-value of the paired comparison (None for FID)."""

    noop: float
    diff: float
    low: float
    high: float
    beats: bool
    gain: float | None
    perfect: float | None
    p_value: float | None = None

    def details(self) -> dict[str, Any]:
        """The stored form (the ``noop`` entry of a feature-visualisation score's details)."""
        return {
            "mean": self.noop,
            "diff": self.diff,
            "interval": [self.low, self.high],
            "beats": self.beats,
            "gain": self.gain,
            "perfect": self.perfect,
            "p_value": self.p_value,
        }


def noop_gain(score: float, noop: float, *, perfect: float) -> float:
    """The share of the way from the no-op to a perfect score that a result covers: ``(score - noop) /
    (perfect - noop)``.

    0 for a result that scores like its unmoved seeds, 1 for a perfect one, negative for one worse than not moving;
    the direction is built in (for FID ``perfect`` is the real-data FID, below the no-op: a lower FID gives a
    positive gain).

    Raises:
        ValueError: if a value is not finite or ``perfect == noop`` (no room to gain).

    Example:
        >>> noop_gain(0.3, 0.1, perfect=1.0), noop_gain(400.0, 650.0, perfect=10.0), noop_gain(0.1, 0.1, perfect=1.0)
        (0.2222222222222222, 0.390625, 0.0)
    """
    for name, value in (("score", score), ("noop", noop), ("perfect", perfect)):
        if not np.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if perfect == noop:
        raise ValueError(f"perfect and noop are equal ({noop!r}): the no-op is already perfect, no gain is defined")
    return float((score - noop) / (perfect - noop))


def beats_noop(low: float, high: float, *, higher_is_better: bool) -> bool:
    """Whether the interval ``(low, high)`` of result - no-op lies entirely on the better side of 0.

    Example:
        >>> beats_noop(0.01, 0.05, higher_is_better=True), beats_noop(-0.01, 0.05, higher_is_better=True)
        (True, False)
        >>> beats_noop(-30.0, -5.0, higher_is_better=False)
        True
    """
    return bool(low > 0) if higher_is_better else bool(high < 0)


def compare_paired(
    result: Sequence[float] | np.ndarray,
    noop: Sequence[float] | np.ndarray,
    *,
    higher_is_better: bool,
    perfect: float | None,
    n_resamples: int = 1000,
    level: float = LEVEL,
    seed: int = 0,
) -> NoopComparison:
    """A per-example score against its no-op on the same seeds, paired by target.

    ``diff = mean(result - noop)``; on the targets' means over seed kinds (seed kinds sharing a target are resampled
    together), ``metrics.stats.paired_comparison`` gives its interval (t below 30 pairs, else percentile bootstrap)
    and a one-sided sign-flip test in the better direction. The result beats the no-op when the interval lies on the
    better side of 0 and the test rejects at ``(1 - level) / 2``. Simulated with 32 targets and mean-zero
    differences (2,000 data sets each): normal differences are called better 2.4% of the time at a nominal 2.5% (the
    bootstrap alone: 3.3%), right-skewed (centred exponential) 1.9%, left-skewed 4.5%, which the sign-flip test's
    symmetry assumption does not cover (tests/metrics/featurevis/test_noop.py checks the normal case). ``gain =
    noop_gain(mean(result), mean(noop), perfect)``.

    Args:
        result, noop: float ``(K, n)`` (K seed kinds of n targets, e.g. inversion) or ``(n,)``, finite.
        higher_is_better: the metric's direction.
        perfect: the score of a perfect result (SSIM 1, distance 0, accuracy 1), or None (no gain: PSNR); the gain
            is None too where the no-op is already perfect.
        n_resamples, level, seed: of the bootstrap.

    Raises:
        ValueError: shapes differ, fewer than 2 targets, or values that are not finite.

    Example:
        >>> c = compare_paired([[0.3, 0.5], [0.1, 0.3]], [[0.1, 0.3], [0.1, 0.1]], higher_is_better=True, perfect=1.0)
        >>> round(c.diff, 6), round(c.low, 6), round(c.high, 6), c.p_value, c.beats, round(c.gain, 6)
        (0.15, -0.48531, 0.78531, 0.25, False, 0.176471)
    """
    r, b = np.asarray(result, dtype=np.float64), np.asarray(noop, dtype=np.float64)
    if r.shape != b.shape or r.ndim not in (1, 2) or r.shape[-1] < 2:
        raise ValueError(
            f"result and noop must have the same shape (K, n) or (n,) with n >= 2, got {r.shape}, {b.shape}"
        )
    if not (np.isfinite(r).all() and np.isfinite(b).all()):
        raise ValueError("result and noop must be finite")
    r2, b2 = np.atleast_2d(r), np.atleast_2d(b)
    alternative = "greater" if higher_is_better else "less"
    c = paired_comparison(
        r2.mean(axis=0), b2.mean(axis=0), alternative=alternative, level=level, n_resamples=n_resamples, seed=seed
    )
    diff, low, high = c.diff, c.lo, c.hi
    gain = (
        None if perfect is None or perfect == b.mean() else noop_gain(float(r.mean()), float(b.mean()), perfect=perfect)
    )
    beats = beats_noop(low, high, higher_is_better=higher_is_better) and c.p_value < (1 - level) / 2
    return NoopComparison(float(b.mean()), diff, low, high, beats, gain, perfect, c.p_value)


@dataclass(frozen=True)
class FidWithNoop:
    """FIDs of the generated images and of their seeds against the same real set, each ``(fid, low, high)`` (as
    ``metrics.stats.fid_interval``), and the generated images' comparison with the seeds."""

    result: tuple[float, float, float]
    noop: tuple[float, float, float]
    comparison: NoopComparison


def fid_with_noop(
    generated: np.ndarray,
    seeds: np.ndarray,
    real: np.ndarray,
    *,
    perfect: float,
    n_resamples: int = 200,
    level: float = LEVEL,
    seed: int = 0,
) -> FidWithNoop:
    """FID of generated images and of their seeds against real images, and the difference, from shared replicates.

    Each replicate draws N row indices of the (generated, seed) pairs and M of the real rows with replacement
    (``numpy.random.default_rng(seed)``, in the order of ``metrics.stats.fid_interval``, so that the generated
    images' interval equals ``fid_interval(generated, real, seed=seed)``) and computes both FIDs on them. Every
    interval is the percentile interval shifted by its bootstrap bias, as ``fid_interval``'s (it targets the
    expected FID, or difference of FIDs, at these sample sizes and contains the point estimate). ``perfect``
    (the real-data FID at these sample sizes) is the gain's perfect score.

    Args:
        generated: float ``(N, D)`` features of the generated images, N >= 2.
        seeds: float ``(N, D)`` features of their seeds, row i the seed of generated row i.
        real: float ``(M, D)`` features of the real images, M >= 2.

    Returns:
        a :class:`FidWithNoop`.

    Raises:
        ValueError: bad shapes or non-finite features.
    """
    from metrics.featurevis.scores import fid

    g, s, r = (np.asarray(a, dtype=np.float64) for a in (generated, seeds, real))
    if g.ndim != 2 or g.shape != s.shape or r.ndim != 2 or r.shape[1] != g.shape[1] or min(len(g), len(r)) < 2:
        raise ValueError(
            f"generated and seeds must be (N, D) and real (M, D), N, M >= 2; got {g.shape}, {s.shape}, {r.shape}"
        )
    if not (np.isfinite(g).all() and np.isfinite(s).all() and np.isfinite(r).all()):
        raise ValueError("features must be finite")
    import torch

    point_g = fid(torch.from_numpy(g), torch.from_numpy(r))
    point_s = fid(torch.from_numpy(s), torch.from_numpy(r))
    rng = np.random.default_rng(seed)
    n, m = len(g), len(r)
    ix, iy = rng.integers(0, n, size=(n_resamples, n)), rng.integers(0, m, size=(n_resamples, m))
    with threadpool_limits(1, user_api="blas"):  # many small matrices: threaded BLAS only adds contention
        boot_g = _prefix_fids(g, r, ix, iy, [n], [m])[:, 0]
        boot_s = _prefix_fids(s, r, ix, iy, [n], [m])[:, 0]
    result = (point_g, *_shifted(boot_g, point_g, level))
    noop = (point_s, *_shifted(boot_s, point_s, level))
    diff = point_g - point_s
    low, high = _shifted(boot_g - boot_s, diff, level)
    comparison = NoopComparison(
        point_s,
        diff,
        low,
        high,
        beats_noop(low, high, higher_is_better=False),
        None if perfect == point_s else noop_gain(point_g, point_s, perfect=perfect),
        perfect,
    )
    return FidWithNoop(result, noop, comparison)


def _shifted(boot: np.ndarray, point: float, level: float) -> tuple[float, float]:
    """The percentile interval of ``boot`` minus its bias ``mean(boot) - point``."""
    alpha = (1 - level) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha])
    bias = float(boot.mean()) - point
    return float(lo) - bias, float(hi) - bias


__all__ = ["FidWithNoop", "NoopComparison", "beats_noop", "compare_paired", "fid_with_noop", "noop_gain"]
