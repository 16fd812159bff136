"""Controls (harness/report/controls.py). On real Fashion-MNIST images: methods whose localisation score the
input-structured control matches are flagged trivial (gradient x input, IG from black: zero attribution wherever the
image is black), saliency is not. On hand-built scores: the margin, the direction, and the controls a metric is held
to."""

import pytest
import torch

from harness.report.controls import ControlCheck, beats_controls, control_checks, shortfall
from harness.report.entries import Entry
from harness.report.scores import Score
from metrics.controls import CONTROLS
from metrics.suite import SuiteConfig, run_suite
from tests.harness.report.builders import entry, score

METHODS = ("saliency", "input_x_gradient", "integrated_gradients")


@pytest.fixture(scope="module")
def checks(standard_model, fmnist_test):
    x, y = fmnist_test
    with torch.no_grad():
        pred = standard_model(x).argmax(1)
    config = SuiteConfig(
        methods=METHODS,
        metrics=("relevance_mass_ratio",),
        n_explain=60,
        batch_size=64,
        method_options=(("integrated_gradients", "baseline", "black"), ("integrated_gradients", "n_steps", 16)),
    )
    scores = run_suite(
        standard_model,
        x,
        y,
        pred,
        config=config,
        num_classes=10,
        has_object_masks=True,
        background=None,
        device=torch.device("cpu"),
        progress=False,
    )
    as_scores = {
        (s.method, s.metric): Score(
            sum(s.values) / len(s.values),
            None,
            None,
            len(s.values),
            values=tuple(s.values),
            keys=tuple(s.details["index"]),
            details=s.details,
        )
        for s in scores
    }
    entry = Entry("run", "standard", 200, "apgd-ce", 0.9, 0.0, "standard", None, (), as_scores)
    return {(c.method, c.control): c for c in control_checks([entry])}


@pytest.mark.parametrize("method", ["input_x_gradient", "integrated_gradients"])
def test_zero_background_methods_are_matched_by_the_input_control(checks, method):
    c = checks[(method, "control_input")]
    assert c.matches and not c.beats, c  # trivial: equivalent to the input times noise


def test_saliency_is_not_matched_by_the_input_control(checks):
    c = checks[("saliency", "control_input")]
    assert not c.matches, c


def test_trivial_methods_beat_random_attributions_and_saliency_does_not(checks):
    # zero-background methods put every bit of mass on the object (ratio ~2.5 against chance 1); the standard
    # model's saliency spreads over the background and falls below chance: it beats neither control
    assert checks[("input_x_gradient", "control_random")].beats
    assert not checks[("saliency", "control_random")].beats and checks[("saliency", "control_random")].diff < 0


# --- hand-built scores ------------------------------------------------------------------------------------------

VALUES = [0.3, 0.5, 0.4, 0.9, 0.7, 0.6]


def _entry(metric, method_values, random_values, input_values):
    scores = {
        ("saliency", metric): score(method_values, range(6)),
        ("control_random", metric): score(random_values, range(6)),
        ("control_input", metric): score(input_values, range(6)),
    }
    return entry("m", scores)


def test_a_control_check_is_the_paired_difference_against_a_tenth_of_the_controls_gap():
    """Constant per-image differences: the paired interval is the difference itself. Against the random control
    (1.0 worse) the method beats it; the input control is 0.05 worse, inside the margin 0.1 x 0.95: a match."""
    e = _entry("sparseness", VALUES, [v - 1.0 for v in VALUES], [v - 0.05 for v in VALUES])
    checks = {c.control: c for c in control_checks([e])}
    random, inputs = checks["control_random"], checks["control_input"]
    assert (random.diff, random.low, random.high) == pytest.approx((1.0, 1.0, 1.0))
    assert random.beats and not random.matches
    assert (inputs.diff, inputs.low, inputs.high) == pytest.approx((0.05, 0.05, 0.05))
    assert inputs.matches and not inputs.beats
    assert shortfall(inputs) == "≈"


def test_a_lower_is_better_score_beats_a_control_by_being_lower():
    e = _entry("randomisation", VALUES, [v + 1.0 for v in VALUES], [v - 0.5 for v in VALUES])
    checks = {c.control: c for c in control_checks([e])}
    assert checks["control_random"].beats
    assert not checks["control_input"].beats and not checks["control_input"].matches
    assert shortfall(checks["control_input"]) == "worse than"  # higher than the input control: worse


def test_only_headline_scores_of_real_methods_are_checked_and_only_when_they_pair():
    scores = {
        ("saliency", "infidelity"): score(VALUES, range(6)),  # not a headline metric
        ("control_random", "infidelity"): score(VALUES, range(6)),
        ("saliency", "sparseness"): score(VALUES, range(6)),
        ("control_random", "sparseness"): score(VALUES[:5]),  # keyless, another length: cannot pair
        ("control_input", "sparseness"): score(VALUES[:1], [0]),  # one shared image: no interval
    }
    assert control_checks([entry("m", scores)]) == []


def _check(metric, control, beats, low=0.1, high=0.3):
    return ControlCheck("m", "saliency", metric, control, (low + high) / 2, low, high, beats, False)


def test_a_score_is_held_to_the_controls_its_metric_names():
    """The randomisation tests are held to the input control only (MetricSpec.controls)."""
    checks = [_check(metric, c, c == "control_input") for metric in ("randomisation", "sparseness") for c in CONTROLS]
    assert beats_controls(checks, "m", "saliency", "randomisation")
    assert not beats_controls(checks, "m", "saliency", "sparseness")
    assert beats_controls(checks, "other", "saliency", "sparseness")  # no control scored: nothing to beat


def test_shortfall_says_how_a_score_misses_its_control():
    assert shortfall(_check("sparseness", "control_random", False, -0.3, -0.1)) == "worse than"
    assert shortfall(_check("sparseness", "control_random", False, -0.1, 0.3)) == "not clearly better than"
    assert shortfall(_check("randomisation", "control_random", False, -0.1, 0.3)) == "not clearly better than"
