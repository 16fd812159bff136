"""Each headline score against its bar, the best model-free control on the same model and images, and the board's
gate over recipes (harness/report/controls.py), on hand-built scores; p-values against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import ttest_1samp

from harness.report.controls import Gates, bar_checks, beats_bar_on, gate, noop_checks
from harness.report.recipes import recipes
from metrics.bar import beats_bar
from tests.harness.report.builders import entry, score

EG = "expected_gradients"
WIGGLE = [0.0, 0.02, -0.02, 0.01, -0.01, 0.0, 0.03, -0.03, 0.0, 0.0, 0.01, -0.01]


def _scored(model, method_value, controls, metric="randomisation", **kw):
    """``model`` with ``method_value + wiggle`` on 12 images and each control at its constant + wiggle."""
    keys = range(len(WIGGLE))
    scores = {(EG, metric): score([method_value + w for w in WIGGLE], keys)}
    for name, value in controls.items():
        scores[(name, metric)] = score([value + w / 2 for w in WIGGLE], keys)
    return entry(model, scores, **kw)


def test_the_bar_is_the_best_control_the_metric_is_held_to():
    """Randomisation (lower is better) is held to the input-structured controls only: the random maps' 0.0 (which
    random maps reach by construction) is not its bar; the input control's 0.9 and 1 - x's 0.7 are, and 0.7 wins."""
    e = _scored("a", 0.3, {"control_random": 0.0, "control_input": 0.9, "control_inverse": 0.7})
    (check,) = bar_checks([e])
    assert (check.model, check.method, check.metric, check.bar) == ("a", EG, "randomisation", "control_inverse")
    assert check.bar_mean == pytest.approx(0.7) and check.diff == pytest.approx(0.4) and check.beats
    reference = beats_bar(
        "randomisation",
        np.asarray(e.scores[(EG, "randomisation")].values),
        {c: np.asarray(e.scores[(c, "randomisation")].values) for c in ("control_input", "control_inverse")},
    )
    assert (check.low, check.high, check.p_value) == pytest.approx((reference.lo, reference.hi, reference.p_value))
    worse = _scored("b", 0.8, {"control_input": 0.9, "control_inverse": 0.7})
    (check,) = bar_checks([worse])
    assert not check.beats and check.diff == pytest.approx(-0.1)
    assert beats_bar_on([check], "a", EG, "randomisation")  # not checked for a: nothing to fail
    assert not beats_bar_on([check], "b", EG, "randomisation")


def test_a_models_floor_and_ceiling_are_not_methods_held_to_the_bar():
    """The bound rows (bound_floor, bound_ceiling: the model's own random and best deletion orders) are scored with
    the curve metrics like a method, but they are the model's scale, not an explanation: only EG is checked."""
    keys = range(len(WIGGLE))
    scores = {
        (name, "abpc"): score([value + w for w in WIGGLE], keys)
        for name, value in ((EG, 0.5), ("bound_floor", 0.0), ("bound_ceiling", 0.7), ("control_inverse", 0.2))
    }
    assert [(c.method, c.bar) for c in bar_checks([entry("a", scores)])] == [(EG, "control_inverse")]


def test_metrics_without_a_null_have_no_bar_and_no_gate():
    e = entry("a", {(EG, "sparseness"): score([0.5, 0.6], [0, 1]), ("control_input", "sparseness"): score([0.6, 0.6])})
    assert bar_checks([e]) == []
    found = gate(recipes([e]), [], (EG, "sparseness"))
    assert not found.passes and "complexity metric has no chance level" in found.reason


def test_the_gate_is_a_one_sided_t_test_over_recipes_of_their_models_mean_improvement():
    entries = [
        _scored("s0", 0.50, {"control_input": 0.90}, recipe="std"),
        _scored("s1", 0.60, {"control_input": 0.90}, recipe="std"),
        _scored("r0", 0.70, {"control_input": 0.90}, recipe="rob"),
        _scored("o0", 0.95, {"control_input": 0.90}, recipe="other"),
    ]
    checks = bar_checks(entries)
    found = gate(recipes(entries), checks, (EG, "randomisation"))
    units = [np.mean([0.40, 0.30]), 0.20, -0.05]  # each recipe's mean improvement over its bar
    expected = ttest_1samp(units, 0.0, alternative="greater")
    assert found.units == 3 and found.mean == pytest.approx(np.mean(units))
    assert found.p_value == pytest.approx(expected.pvalue) and found.passes == (expected.pvalue < 0.05)
    gates = Gates(recipes(entries), checks)
    assert gates(EG, "randomisation") == found.passes and gates.of((EG, "randomisation")) == found
    lonely = gate(recipes(entries[:1]), checks, (EG, "randomisation"))
    assert not lonely.passes and lonely.units == 1 and "fewer than 2 recipes" in lonely.reason


def test_feature_visualisation_is_held_to_its_no_op():
    def fv(model, diff, interval, beats, metric="generation_fid", mean=600.0):
        noop = {"mean": mean, "diff": diff, "interval": interval, "beats": beats, "p_value": None}
        return entry(model, {("featurevis", metric): score([mean + diff], details={"noop": noop})})

    better = fv("a", -400.0, [-450.0, -350.0], True)  # FID is lower-is-better: -400 is an improvement of 400
    (check,) = noop_checks([better, entry("b")])
    assert (check.bar, check.diff, check.low, check.high, check.beats) == ("featurevis_noop", 400.0, 350.0, 450.0, True)
    assert math.isnan(check.p_value)
    ssim = fv("c", 0.01, [-0.01, 0.03], False, metric="inversion_ssim", mean=0.06)
    (check,) = noop_checks([ssim])
    assert check.diff == pytest.approx(0.01) and not check.beats
    assert noop_checks([fv("d", 1.0, "malformed", True)]) == []
    fid = ("featurevis", "generation_fid")
    no_noop = gate(recipes([entry("e", {fid: score([100.0])})]), [], fid)
    assert not no_noop.passes and "no no-op stored" in no_noop.reason  # nothing to show it beats chance
    no_control = gate(recipes([entry("e", {(EG, "randomisation"): score([0.5])})]), [], (EG, "randomisation"))
    assert not no_control.passes and "no model-free control stored" in no_control.reason
