"""FID intervals by simulation on Gaussians whose FID is known in closed form, and the batched bootstrap replicates
against ``metrics.featurevis.similarity.fid`` on the same resampled sets.

Coverage targets (95% nominal): over ``SIMS`` simulated data sets the number of intervals that contain their
target must lie in ``[binom.ppf(0.0005, SIMS, 0.95 - SLACK), binom.isf(0.0005, SIMS, 0.95 + SLACK)]``: the
central 99.9% range of the count if the true coverage were anywhere within ``SLACK`` of nominal (bootstrap
intervals are approximate at finite N; ``SLACK`` is the systematic error allowed, the binomial range the
simulation noise).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg, stats

from metrics.stats.fid import _prefix_fids, fid, fid_infinity, fid_interval

SLACK = 0.03


def _gaussians(d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(d, d)) / np.sqrt(d), rng.normal(size=(d, d)) / np.sqrt(d)
    return np.zeros(d), a @ a.T + 0.5 * np.eye(d), np.full(d, 0.8 / np.sqrt(d)), b @ b.T + 0.5 * np.eye(d)


def _population_fid(mu1, s1, mu2, s2) -> float:
    """Closed form ``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` with scipy's matrix square root."""
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real))


def _sample_fids(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Finite-sample FIDs of batches ``(B, N, D)``, ``(B, M, D)``, independently of the code under test:
    ``Tr (S1 S2)^(1/2)`` is the nuclear norm of ``L2^T L1`` (S = L L^T, Cholesky), by SVD."""
    mx, my = x.mean(1), y.mean(1)
    cx = np.einsum("bni,bnj->bij", x - mx[:, None], x - mx[:, None]) / (x.shape[1] - 1)
    cy = np.einsum("bni,bnj->bij", y - my[:, None], y - my[:, None]) / (y.shape[1] - 1)
    lx, ly = np.linalg.cholesky(cx), np.linalg.cholesky(cy)
    nuclear = np.linalg.svd(np.swapaxes(ly, 1, 2) @ lx, compute_uv=False).sum(-1)
    return ((mx - my) ** 2).sum(-1) + np.trace(cx, axis1=1, axis2=2) + np.trace(cy, axis1=1, axis2=2) - 2 * nuclear


def _draw(rng, params, sims, n, m):
    mu1, s1, mu2, s2 = params
    x = mu1 + rng.normal(size=(sims, n, mu1.size)) @ np.linalg.cholesky(s1).T
    y = mu2 + rng.normal(size=(sims, m, mu1.size)) @ np.linalg.cholesky(s2).T
    return x, y


def _coverage_range(sims: int) -> tuple[float, float]:
    return stats.binom.ppf(0.0005, sims, 0.95 - SLACK), stats.binom.isf(0.0005, sims, 0.95 + SLACK)


def test_bootstrap_replicates_equal_scores_fid():
    rng = np.random.default_rng(0)
    for n, m, d in [(30, 50, 4), (12, 40, 16)]:  # the second has N < D (singular covariance)
        x, y = rng.normal(size=(n, d)), rng.normal(size=(m, d)) + 0.3
        ix, iy = rng.integers(0, n, size=(4, n)), rng.integers(0, m, size=(4, m))
        batched = _prefix_fids(x, y, ix, iy, [n], [m])[:, 0]
        ref = [fid(torch.from_numpy(x[i]), torch.from_numpy(y[j])) for i, j in zip(ix, iy, strict=True)]
        # rounding: 1e-9 relative; with N < D the exactly-zero eigenvalues of S_a S_b come out as +-eps ||S_a S_b||
        # and are clipped at 0 before the square root, so each may add up to sqrt(eps ||S_a S_b||) to the trace
        scale = max(np.linalg.norm(np.cov(x.T) @ np.cov(y.T), 2), 1.0)
        atol = 1e-9 if n > d else 2 * d * np.sqrt(np.finfo(float).eps * 4 * scale)
        np.testing.assert_allclose(batched, ref, rtol=1e-9, atol=atol)
        # prefixes: the first k rows of each index row
        pre = _prefix_fids(x, y, ix, iy, [n // 2, n], [m // 2, m])
        half = [
            (torch.from_numpy(x[i[: n // 2]]), torch.from_numpy(y[j[: m // 2]])) for i, j in zip(ix, iy, strict=True)
        ]
        ref = [fid(u, v) for u, v in half]
        np.testing.assert_allclose(pre[:, 0], ref, rtol=1e-9, atol=atol)
        np.testing.assert_allclose(pre[:, 1], batched, rtol=1e-9, atol=atol)


def test_point_estimate_is_scores_fid():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(50, 3)), rng.normal(size=(60, 3))
    value, lo, hi = fid_interval(torch.from_numpy(x), y, n_resamples=50)
    assert value == fid(torch.from_numpy(x), torch.from_numpy(y)) and lo <= value <= hi


def test_sample_fid_oracle_matches_scipy_closed_form():
    # the test's own oracle (Cholesky + SVD) against scipy's sqrtm on one data set
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(1, 40, 4)), rng.normal(size=(1, 30, 4)) * 1.5
    cx, cy = np.cov(x[0], rowvar=False), np.cov(y[0], rowvar=False)
    expected = _population_fid(x[0].mean(0), cx, y[0].mean(0), cy)
    assert _sample_fids(x, y)[0] == pytest.approx(expected, rel=1e-10)


def test_fid_interval_covers_expected_finite_sample_fid():
    # target: E[F(N, M)], the expectation of the reported FID at these sample sizes. D = 4, N = M = 40 is a
    # high-bias regime (E[F] - FID ~ 0.6 ~ the sd of F), where the plain percentile interval misses E[F]
    params = _gaussians(4, seed=10)
    rng = np.random.default_rng(11)
    n = m = 40
    draws = _sample_fids(*_draw(rng, params, 40000, n, m))
    expected = draws.mean()  # Monte Carlo error ~ 0.004, negligible
    assert expected - _population_fid(*params) > 0.3
    sims = 200
    xs, ys = _draw(rng, params, sims, n, m)
    covered = contains_point = 0
    widths = []
    for i in range(sims):
        value, lo, hi = fid_interval(xs[i], ys[i], n_resamples=200, seed=i)
        covered += lo <= expected <= hi
        contains_point += lo <= value <= hi
        widths.append(hi - lo)
    lo_count, hi_count = _coverage_range(sims)
    assert lo_count <= covered <= hi_count
    assert contains_point == sims
    # not covering by being wide: the mean width is within 20% of the ideal 2 z sd(F) (sd from the 40000 draws)
    assert 0.8 < np.mean(widths) / (2 * stats.norm.ppf(0.975) * draws.std()) < 1.2


def test_fid_infinity_covers_population_fid():
    # target: the population FID of the two Gaussians (closed form); FID-infinity removes the O(1/N) bias
    params = _gaussians(3, seed=20)
    true = _population_fid(*params)
    rng = np.random.default_rng(21)
    sims = 150
    xs, ys = _draw(rng, params, sims, 100, 100)
    covered, estimates, widths = 0, [], []
    for i in range(sims):
        value, lo, hi = fid_infinity(xs[i], ys[i], n_repeats=2, n_resamples=100, seed=i)
        covered += lo <= true <= hi
        estimates.append(value)
        widths.append(hi - lo)
    lo_count, hi_count = _coverage_range(sims)
    assert lo_count <= covered <= hi_count
    # mean width within 25% of the ideal 2 z sd(FID_inf) (the sd from 150 estimates has ~6% relative error)
    ratio = np.mean(widths) / (2 * stats.norm.ppf(0.975) * np.std(estimates, ddof=1))
    assert 0.75 < ratio < 1.25
    # nearly unbiased for the population FID, unlike the finite-sample FID: mean within 4 standard errors
    estimates = np.asarray(estimates)
    assert abs(estimates.mean() - true) < 4 * estimates.std(ddof=1) / np.sqrt(sims)
    assert _sample_fids(xs, ys).mean() - true > 4 * estimates.std(ddof=1) / np.sqrt(sims)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: fid_interval(np.zeros((5, 2)), np.zeros((5, 3))), "same dimension"),
        (lambda: fid_interval(np.zeros((1, 2)), np.zeros((5, 2))), "feats_a needs at least 2 rows"),
        (lambda: fid_interval(np.zeros((5, 2)), np.full((5, 2), np.nan)), "feats_b contains"),
        (lambda: fid_interval(np.zeros(5), np.zeros((5, 1))), "2-dimensional"),
        (lambda: fid_interval(np.ones((5, 2)), np.ones((5, 2)), n_resamples=0), "n_resamples"),
        (lambda: fid_infinity(np.ones((50, 2)), np.ones((50, 2)), fractions=(1.0, 0.5)), "fractions"),
        (lambda: fid_infinity(np.ones((5, 2)), np.ones((5, 2)), fractions=(0.1, 1.0)), "fewer than 2 rows"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
