"""The no-op control's arithmetic (metrics.featurevis.noop): the gain by hand, the paired comparison by hand, the
FID comparison against metrics.stats.fid_interval on the same replicates, and the false-"beats" rate of both
comparisons under a null simulated with known answer (result and no-op exchangeable)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch
from scipy import stats

from metrics.featurevis import noop
from metrics.featurevis.noop import beats_noop, compare_paired, fid_with_noop, noop_gain
from metrics.featurevis.scores import fid
from metrics.stats import fid_interval


def test_gain_by_hand():
    assert noop_gain(0.3, 0.1, perfect=1.0) == pytest.approx(0.2 / 0.9, rel=1e-15)  # SSIM: 2/9 of the way to 1
    assert noop_gain(0.1, 0.1, perfect=1.0) == 0.0  # not moving gains nothing
    assert noop_gain(1.0, 0.1, perfect=1.0) == 1.0
    assert noop_gain(0.05, 0.1, perfect=1.0) == pytest.approx(-0.05 / 0.9, rel=1e-15)  # worse than not moving
    # FID: lower is better; the perfect value (the real-data FID) lies below the no-op, the gain is still positive
    assert noop_gain(400.0, 650.0, perfect=10.0) == 250.0 / 640.0
    assert noop_gain(700.0, 650.0, perfect=10.0) == -50.0 / 640.0
    # reference distance: perfect 0, gain = 1 - distance / no-op distance
    assert noop_gain(15.0, 60.0, perfect=0.0) == 0.75
    with pytest.raises(ValueError, match="perfect and noop are equal"):
        noop_gain(0.5, 1.0, perfect=1.0)
    with pytest.raises(ValueError, match="score"):
        noop_gain(float("nan"), 1.0, perfect=0.0)


def test_beats_needs_the_whole_interval_on_the_better_side():
    assert beats_noop(0.01, 0.2, higher_is_better=True) and not beats_noop(0.0, 0.2, higher_is_better=True)
    assert beats_noop(-5.0, -0.1, higher_is_better=False) and not beats_noop(-5.0, 0.0, higher_is_better=False)
    assert not beats_noop(-0.2, -0.1, higher_is_better=True)  # clearly worse than not moving


def test_paired_comparison_by_hand():
    # 2 seed kinds x 4 targets; per-target mean differences 0.1, 0.2, 0.1, 0.2 (seed kinds averaged first)
    result = np.array([[0.3, 0.5, 0.2, 0.4], [0.1, 0.3, 0.2, 0.2]])
    no_op = np.array([[0.1, 0.3, 0.1, 0.1], [0.1, 0.1, 0.1, 0.1]])
    c = compare_paired(result, no_op, higher_is_better=True, perfect=1.0)
    assert c.diff == pytest.approx(0.15, abs=1e-15) and c.noop == pytest.approx(0.125, abs=1e-15)
    # below 30 pairs the interval is Student's t: 0.15 -+ t(0.975, 3) * sd / 2, sd of {0.1, 0.2, 0.1, 0.2}
    half = stats.t.ppf(0.975, 3) * np.std([0.1, 0.2, 0.1, 0.2], ddof=1) / 2
    assert c.low == pytest.approx(0.15 - half, abs=1e-12) and c.high == pytest.approx(0.15 + half, abs=1e-12)
    assert c.gain == pytest.approx(0.15 / 0.875, rel=1e-12)  # (0.275 - 0.125) / (1 - 0.125)
    # 4 positive differences: the one-sided sign-flip p-value is 1/16 (exact enumeration), not below 0.025
    assert c.p_value == 1 / 16 and not c.beats
    twelve = compare_paired(np.tile(result, 3), np.tile(no_op, 3), higher_is_better=True, perfect=1.0)
    assert twelve.p_value == 1 / 4096 and twelve.beats  # 12 targets, all better: p = 2^-12
    # lower is better: the same numbers are worse than the no-op
    worse = compare_paired(result, no_op, higher_is_better=False, perfect=0.0)
    assert worse.diff == c.diff and not worse.beats and worse.p_value == 1.0
    assert compare_paired(result, no_op, higher_is_better=True, perfect=None).gain is None  # PSNR: no gain
    flat = compare_paired(no_op, no_op, higher_is_better=True, perfect=1.0)
    assert (flat.diff, flat.low, flat.high, flat.gain, flat.beats) == (0.0, 0.0, 0.0, 0.0, False)


def test_paired_comparison_refuses_bad_shapes():
    with pytest.raises(ValueError, match="same shape"):
        compare_paired(np.zeros((2, 4)), np.zeros((2, 3)), higher_is_better=True, perfect=1.0)
    with pytest.raises(ValueError, match="n >= 2"):
        compare_paired(np.zeros((2, 1)), np.zeros((2, 1)), higher_is_better=True, perfect=1.0)
    with pytest.raises(ValueError, match="finite"):
        compare_paired(np.array([0.0, np.nan]), np.zeros(2), higher_is_better=True, perfect=1.0)


def _sets(seed: int, n: int = 60, m: int = 80, d: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    seeds = rng.normal(size=(n, d))
    generated = 0.5 * seeds + rng.normal(size=(n, d)) + 0.3  # moved towards the real set, still paired
    real = rng.normal(size=(m, d)) * 1.2 + 0.5
    return generated, seeds, real


def test_fid_comparison_shares_fid_interval_replicates():
    generated, seeds, real = _sets(0)
    both = fid_with_noop(generated, seeds, real, perfect=0.5, n_resamples=300, seed=7)
    # the same generator draws in the same order as fid_interval: identical replicates, identical intervals
    assert both.result == fid_interval(generated, real, n_resamples=300, seed=7)
    assert both.noop == fid_interval(seeds, real, n_resamples=300, seed=7)
    f_gen = fid(torch.from_numpy(generated), torch.from_numpy(real))
    f_seed = fid(torch.from_numpy(seeds), torch.from_numpy(real))
    c = both.comparison
    assert c.diff == f_gen - f_seed and c.noop == f_seed and c.perfect == 0.5
    assert c.gain == (f_gen - f_seed) / (0.5 - f_seed)
    assert c.low <= c.diff <= c.high and c.p_value is None
    assert c.beats == (c.high < 0)


def test_fid_comparison_of_unmoved_seeds_is_exactly_zero():
    _, seeds, real = _sets(1)
    c = fid_with_noop(seeds, seeds, real, perfect=0.0, n_resamples=100, seed=0).comparison
    assert (c.diff, c.low, c.high, c.gain, c.beats) == (0.0, 0.0, 0.0, 0.0, False)


def test_paired_comparison_false_beats_rate_under_the_null():
    """Result and no-op exchangeable (symmetric per-target differences of mean 0): the share of comparisons called
    better must stay near the one-sided 2.5% (measured over 2000 simulations: 2.4%; the bootstrap interval alone
    3.3%, which is why the sign-flip test is required too). 500 simulations here: the count's 99.9% range at 2.5%
    is <= 26, so 5% is the bound."""
    rng = np.random.default_rng(2)
    hits = 0
    for i in range(500):
        base = rng.normal(size=(2, 32))
        hits += compare_paired(base + rng.normal(size=(2, 32)), base, higher_is_better=True, perfect=None, seed=i).beats
    assert hits / 500 <= 0.05, hits


def test_fid_comparison_false_beats_rate_under_the_null():
    """Generated images and seeds drawn from the same distribution (independent pairs, the harder case): the FID
    difference's interval must call few of them better. Measured over 400 simulations: 3.75% (correlated pairs:
    0.75%) at a nominal one-sided 2.5%. 200 simulations here: at most 6%."""
    rng = np.random.default_rng(1)
    hits = 0
    for i in range(200):
        a, b = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
        real = rng.normal(size=(60, 3)) + 0.5
        hits += fid_with_noop(a, b, real, perfect=0.0, n_resamples=200, seed=i).comparison.beats
    assert hits / 200 <= 0.06, hits


def test_docstring_examples():
    result = doctest.testmod(noop, extraglobs={"np": np})
    assert result.failed == 0 and result.attempted > 0
