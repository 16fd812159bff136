"""Robust accuracy against each headline score across a board's recipes (harness/report/correlations.py): one point
per recipe, exact permutation p-values by hand (5 recipes: 120 orderings), the gate and the Holm family."""

from __future__ import annotations

import math

import pytest

from harness.report.correlations import MIN_UNITS, correlation, correlations, scored_pairs
from harness.report.recipes import recipes
from metrics.stats.units import recipe_correlation
from tests.harness.report.builders import entry, score

EG = "expected_gradients"
RAND = (EG, "randomisation")  # lower is better


def everyone(*_):
    return True


def _recipes(means, *, seeds=1, spread=0.0):
    """One recipe per mean score (robust accuracy 0.1, 0.2, ...), each with ``seeds`` models around it, all scored
    on the same two images."""
    out = []
    for i, m in enumerate(means):
        for s in range(seeds):
            shift = spread * (s - (seeds - 1) / 2)
            out.append(
                entry(
                    f"r{i}s{s}",
                    {RAND: score([m + shift, m + shift], [0, 1])},
                    robust=(i + 1) / 10 + shift,
                    recipe=f"recipe{i}",
                    correct=[0, 1],
                )
            )
    return recipes(out)


def test_a_perfect_rank_correlation_over_five_recipes_has_exact_p_one_in_sixty():
    (c,) = correlations(_recipes([0.5, 0.4, 0.3, 0.2, 0.1]), everyone)
    assert (c.method, c.metric, c.n_units, c.n_models, c.rho) == (EG, "randomisation", 5, 5, pytest.approx(-1.0))
    assert c.p_value == pytest.approx(2 / 120) == c.p_adjusted and c.exact and c.smallest_p == pytest.approx(2 / 120)
    assert c.verdict == "yes"  # randomisation: lower is better, falling with robust accuracy


def test_seeds_of_a_recipe_count_once():
    """Three seeds per recipe: the test has 5 units, not 15, and equals recipe_correlation on the same values."""
    found = _recipes([0.5, 0.3, 0.4, 0.2, 0.1], seeds=3, spread=0.01)
    c = correlation(found, RAND, everyone)
    models = [e for r in found for e in r.entries]
    reference = recipe_correlation(
        [e.robust_acc for e in models], [e.scores[RAND].mean for e in models], [e.recipe for e in models]
    )
    assert (c.n_units, c.n_models) == (5, 15) and (c.rho, c.p_value) == pytest.approx(
        (reference.rho, reference.p_value)
    )


def test_the_gate_and_too_few_recipes_give_no_verdict():
    (blocked,) = correlations(_recipes([0.5, 0.4, 0.3, 0.2, 0.1]), lambda method, metric: False)
    assert blocked.verdict.startswith("no verdict (does not beat its bar") and math.isnan(blocked.p_adjusted)
    (few,) = correlations(_recipes([0.4, 0.3, 0.2, 0.1]), everyone)
    assert few.n_units == MIN_UNITS - 1 and few.verdict == "inconclusive (4 recipes: too few to reject)"
    (flat,) = correlations(_recipes([0.3] * 5), everyone)
    assert math.isnan(flat.rho) and flat.verdict == "inconclusive (no variation)"


def test_scored_pairs_are_every_methods_headline_metrics_and_the_measured_featurevis_headline():
    e = entry(
        "m",
        {
            ("saliency", "infidelity"): score([1.0]),
            ("control_random", "abpc"): score([1.0]),
            ("bound_ceiling", "abpc"): score([1.0]),
            ("featurevis_noop", "generation_fid"): score([1.0]),
            ("reliability", "abpc"): score([1.0]),
            ("featurevis", "inversion_psnr"): score([1.0]),
        },
    )
    pairs = scored_pairs([e])
    assert pairs[:2] == [("saliency", "abpc"), ("saliency", "abpc_road")]
    assert {m for m, _ in pairs} == {"saliency", "featurevis"}  # controls, bounds, no-op, reliability: not methods
    assert [p for p in pairs if p[0] == "featurevis"] == [
        ("featurevis", "inversion_ssim"),
        ("featurevis", "inversion_distance"),
        ("featurevis", "generation_fid"),
        ("featurevis", "generation_judge_accuracy"),
    ]
