"""Holm and Benjamini-Hochberg adjusted p-values against independent references: scipy's
``false_discovery_control`` (BH), the closed-testing definition of Holm, and hand-computed families."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from metrics.stats.multiplicity import benjamini_hochberg, holm


def _holm_closed_testing(p: np.ndarray) -> np.ndarray:
    """Holm = closed testing with Bonferroni local tests: the adjusted p of H_i is the largest Bonferroni p-value
    ``min(1, |S| min_{j in S} p_j)`` over all intersections S that contain i (exponential; m <= 8)."""
    m = p.size
    out = np.zeros(m)
    for size in range(1, m + 1):
        for subset in itertools.combinations(range(m), size):
            local = min(1.0, size * p[list(subset)].min())
            for i in subset:
                out[i] = max(out[i], local)
    return out


def test_hand_computed_family():
    # sorted 0.005, 0.01, 0.03, 0.04 (m = 4): Holm 4*0.005, 3*0.01, max(0.03, 2*0.03), max(0.06, 0.04);
    # BH min over j >= i of 4 p_(j) / j: 0.02, 0.02, 0.04, 0.04
    p = [0.01, 0.04, 0.03, 0.005]
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02], rtol=1e-15)
    np.testing.assert_allclose(benjamini_hochberg(p), [0.02, 0.04, 0.04, 0.02], rtol=1e-15)
    # capped at 1 and monotone: 3 * 0.5 -> 1
    np.testing.assert_allclose(holm([0.5, 0.6, 0.01]), [1.0, 1.0, 0.03], rtol=1e-15)


@pytest.mark.parametrize("m", [1, 2, 5, 8])
def test_holm_equals_closed_testing(m):
    rng = np.random.default_rng(m)
    for _ in range(20):
        p = rng.uniform(0, 0.2, size=m) ** rng.uniform(0.5, 2)
        p[rng.random(m) < 0.2] = p[0]  # ties
        np.testing.assert_allclose(holm(p), _holm_closed_testing(p), rtol=1e-14, atol=0)


@pytest.mark.parametrize("m", [1, 3, 10, 50])
def test_bh_equals_scipy(m):
    rng = np.random.default_rng(100 + m)
    for _ in range(20):
        p = np.round(rng.uniform(0, 1, size=m) ** 3, 3)  # rounding makes ties
        np.testing.assert_allclose(benjamini_hochberg(p), false_discovery_control(p, method="bh"), rtol=1e-14)


@pytest.mark.parametrize("adjust", [holm, benjamini_hochberg])
def test_nan_left_out_of_the_family(adjust):
    p = np.array([0.01, np.nan, 0.04, 0.03, np.nan, 0.005])
    out = adjust(p)
    assert np.isnan(out[[1, 4]]).all()
    # the family is the 4 finite p-values (m = 4, not 6)
    np.testing.assert_allclose(out[[0, 2, 3, 5]], adjust(p[[0, 2, 3, 5]]), rtol=1e-15)
    assert np.isnan(adjust([np.nan, np.nan])).all() and adjust([]).shape == (0,)


@pytest.mark.parametrize("adjust", [holm, benjamini_hochberg])
@pytest.mark.parametrize("bad", [[0.1, 1.5], [-0.1], [0.1, np.inf], [[0.1, 0.2]]])
def test_bad_p_values_raise(adjust, bad):
    with pytest.raises(ValueError, match="p_values"):
        adjust(bad)
