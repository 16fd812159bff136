"""Robust accuracy against each headline score across a board's models (harness/report/correlations.py): exact
permutation p-values by hand (5 models: 120 orderings), the control filter and the Holm family."""

import math

import pytest

from harness.report.correlations import MIN_MODELS, correlations, scored_pairs
from tests.harness.report.builders import entry, score

EG = "expected_gradients"


def _everyone(*_):
    return True


def _models(gini, abpc=None):
    """Five models, robust accuracy 0.1 ... 0.5, with these mean Gini (and ABPC) scores."""
    out = []
    for i, g in enumerate(gini):
        scores = {(EG, "sparseness"): score([g])}
        if abpc is not None:
            scores[(EG, "abpc")] = score([abpc[i]])
        out.append(entry(f"m{i}", scores, robust=(i + 1) / 10))
    return out


def test_a_perfect_rank_correlation_over_five_models_has_exact_p_one_in_sixty():
    (c,) = correlations(_models([0.1, 0.2, 0.3, 0.4, 0.5]), _everyone)
    assert (c.method, c.metric, c.n_models, c.rho) == (EG, "sparseness", 5, pytest.approx(1.0))
    assert c.p_value == pytest.approx(2 / 120) and c.p_adjusted == pytest.approx(2 / 120)
    assert c.verdict == "yes"  # Gini: higher is better


def test_holm_adjusts_over_the_boards_correlations():
    found = correlations(_models([0.5, 0.4, 0.3, 0.2, 0.1], abpc=[0.1, 0.3, 0.2, 0.4, 0.5]), _everyone)
    by_metric = {c.metric: c for c in found}
    gini, abpc = by_metric["sparseness"], by_metric["abpc"]
    assert gini.rho == pytest.approx(-1.0) and gini.p_adjusted == pytest.approx(2 * 2 / 120)
    assert gini.verdict == "no (the opposite)"
    # |rho| >= 0.9: the identity, its reverse and the 4 + 4 orderings one adjacent swap away from them
    assert abpc.rho == pytest.approx(0.9) and abpc.p_value == pytest.approx(10 / 120) == abpc.p_adjusted
    assert abpc.verdict == "inconclusive (adjusted p = 0.083)"


def test_scores_that_do_not_beat_their_controls_are_left_out():
    def informative(model, method, metric):
        return model != "m4"

    (c,) = correlations(_models([0.1, 0.2, 0.3, 0.4, 0.5]), informative)
    assert c.n_models == MIN_MODELS - 1 and c.verdict == "inconclusive (n=4 models)"


def test_no_variation_or_too_few_models_give_no_test():
    (flat,) = correlations(_models([0.3] * 5), _everyone)
    assert math.isnan(flat.rho) and math.isnan(flat.p_adjusted) and flat.verdict == "inconclusive (no variation)"
    (two,) = correlations(_models([0.1, 0.2]), _everyone)
    assert math.isnan(two.rho) and two.verdict == "inconclusive (n=2 models)"


def test_scored_pairs_are_every_methods_headline_metrics_and_the_measured_featurevis_headline():
    e = entry(
        "m",
        {
            ("saliency", "infidelity"): score([1.0]),
            ("control_random", "abpc"): score([1.0]),
            ("reliability", "abpc"): score([1.0]),
            ("featurevis", "inversion_psnr"): score([1.0]),
        },
    )
    pairs = scored_pairs([e])
    assert pairs[:2] == [("saliency", "abpc"), ("saliency", "abpc_road")]
    assert {m for m, _ in pairs} == {"saliency", "featurevis"}  # controls and reliability are not methods
    assert [p for p in pairs if p[0] == "featurevis"] == [
        ("featurevis", "inversion_ssim"),
        ("featurevis", "inversion_distance"),
        ("featurevis", "generation_fid"),
        ("featurevis", "generation_judge_accuracy"),
    ]
