"""The metric table's fields (metrics/registry.py): the controls, fill variants and pairing each spec names exist
and fit, the detail keys a metric declares are exactly the ones the suite stores for it, the curve metrics under
both fills and both scored outputs, and which metrics have a verdict, a bar or a place in the headline, and why not."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from metrics.controls import CONTROLS, INPUT_CONTROLS
from metrics.registry import HEADLINE_METRICS, METRICS, SCORE_DETAILS, output_variant
from metrics.suite import MetricScore, iter_suite
from tests.metrics.test_sizes import CONFIG, K, make_images, make_model

SPECS = [METRICS.get(name) for name in METRICS]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_bar_controls_are_control_methods(spec):
    assert set(spec.bar_controls) <= set(CONTROLS), spec.bar_controls


def test_only_the_randomisation_tests_are_held_to_the_input_structured_controls_alone():
    restricted = {spec.name for spec in SPECS if spec.bar_controls}
    assert restricted == {"randomisation", "randomisation_efficient"}
    assert all(METRICS.get(name).bar_controls == INPUT_CONTROLS for name in restricted)
    assert "control_random" not in INPUT_CONTROLS


@pytest.mark.parametrize("spec", [s for s in SPECS if s.fill_variant], ids=lambda s: s.name)
def test_a_fill_variant_is_the_same_score_with_road_imputation(spec):
    variant = METRICS.get(spec.fill_variant)
    logit = spec.name.endswith("_logit")
    expected = spec.name.removesuffix("_logit") + "_road" + ("_logit" if logit else "")
    assert variant.name == expected and not variant.fill_variant
    assert (variant.family, variant.higher_is_better, variant.value_range) == (
        spec.family,
        spec.higher_is_better,
        spec.value_range,
    )
    assert "ROAD" in variant.description and "U[0,1] noise" in spec.description


def test_every_noise_filled_curve_names_its_road_variant():
    road = {name for name in METRICS if name.endswith(("_road", "_road_logit"))}
    assert {METRICS.get(name).fill_variant for name in METRICS} - {""} == road


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_values_pair_by_cell_exactly_for_the_composite_metrics(spec):
    assert spec.paired_by == ("cell" if "grid" in spec.needs else "image")


def test_declared_details_are_the_ones_the_suite_stores():
    """A metric stores SCORE_DETAILS (some only when images were dropped) and its own declared keys, always."""
    names = ("gridpg", "randomisation", "sparseness")
    config = dataclasses.replace(CONFIG, methods=("saliency",), metrics=names, controls=())
    x, y = make_images(32)
    model = make_model("gap", 32)
    with torch.no_grad():
        pred = model(x).argmax(1)
    kwargs = {"num_classes": K, "has_object_masks": False, "background": None, "device": torch.device("cpu")}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: a second thread only adds synchronisation
    try:
        items = list(iter_suite(model, x, y, pred, config=config, progress=False, **kwargs))
    finally:
        torch.set_num_threads(threads)
    scores = {item.metric: item for item in items if isinstance(item, MetricScore)}
    assert set(scores) == set(names)
    for name, score in scores.items():
        spec = METRICS.get(name)
        stored = set(score.details) - {"family", "higher_is_better"}  # the parent's own registry says these
        assert spec.details <= stored <= SCORE_DETAILS | spec.details, (name, stored)
    assert METRICS.get("sparseness").details == frozenset()


BASES = ("deletion_auc", "insertion_auc", "abpc", "deletion_relative")


def test_every_curve_metric_under_both_fills_and_both_outputs():
    names = [name for name, spec in METRICS.items() if spec.normalisable]
    assert len(names) == 16
    for base in BASES:
        for suffix, fill in (("", "uniform"), ("_road", "road")):
            probability, logit = METRICS.get(base + suffix), METRICS.get(base + suffix + "_logit")
            assert probability.curve.fill == logit.curve.fill == fill
            assert probability.curve.curves == logit.curve.curves
            assert (probability.curve.score, logit.curve.score) == ("probability", "logit")
            assert probability.curve.base == logit.curve.base == base + suffix
            assert probability.higher_is_better == logit.higher_is_better
            assert max(map(abs, probability.value_range)) == 1 and math.isinf(logit.value_range[1])
            assert output_variant(base + suffix, "logit") == base + suffix + "_logit"
            assert output_variant(base + suffix + "_logit", "probability") == base + suffix
            assert output_variant(base + suffix, "probability") == base + suffix
    assert output_variant("gridpg", "logit") == "gridpg"
    with pytest.raises(ValueError, match="output must be"):
        output_variant("abpc", "softmax")
    assert not any(spec.normalisable for name, spec in METRICS.items() if name not in names)


def test_verdicts_bars_and_headline():
    for name in ("relevance_mass_ratio", "relevance_rank_accuracy", "pointing_game"):
        spec = METRICS.get(name)
        assert not spec.verdict and "input's own support" in spec.no_verdict
        assert "GridPG" in spec.off_headline and name not in HEADLINE_METRICS
    sparseness = METRICS.get("sparseness")
    assert not sparseness.verdict and "no chance level" in sparseness.no_verdict
    for name in ("abpc", "abpc_road", "deletion_relative", "gridpg", "randomisation"):
        assert METRICS.get(name).verdict and METRICS.get(name).headline
    for name in ("randomisation", "randomisation_efficient"):
        assert METRICS.get(name).bar_controls == INPUT_CONTROLS
    assert METRICS.get("abpc").bar_controls == ()  # every control
