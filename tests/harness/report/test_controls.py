"""Controls on real Fashion-MNIST images: methods whose localisation score the input-structured control matches are
flagged trivial (gradient x input, IG from black: zero attribution wherever the image is black), saliency is not."""

import pytest
import torch

from harness.report import analysis
from harness.report.analysis import Entry, Score, control_checks
from metrics.suite import SuiteConfig, run_suite

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
    # mass ratio left the headline because its input control reaches the maximum (metrics.registry: off_headline);
    # control_checks covers the headline metrics, so this check of it puts it back on the list
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(analysis, "HEADLINE_METRICS", (*analysis.HEADLINE_METRICS, "relevance_mass_ratio"))
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
