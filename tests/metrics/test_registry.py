"""The metric table's report fields (metrics/registry.py): the controls, fill variants and pairing each spec names
exist and fit, and the detail keys a metric declares are exactly the ones the suite stores for it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from metrics.controls import CONTROLS
from metrics.registry import METRICS, SCORE_DETAILS
from metrics.suite import MetricScore, iter_suite
from tests.metrics.test_sizes import CONFIG, K, make_images, make_model

SPECS = [METRICS.get(name) for name in METRICS]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_controls_are_control_methods(spec):
    assert spec.controls and set(spec.controls) <= set(CONTROLS), spec.controls


def test_only_the_randomisation_tests_are_held_to_the_input_control_alone():
    alone = {spec.name for spec in SPECS if spec.controls == ("control_input",)}
    assert alone == {"randomisation", "randomisation_efficient"}


@pytest.mark.parametrize("spec", [s for s in SPECS if s.fill_variant], ids=lambda s: s.name)
def test_a_fill_variant_is_the_same_score_with_road_imputation(spec):
    variant = METRICS.get(spec.fill_variant)
    assert variant.name == f"{spec.name}_road" and not variant.fill_variant
    assert (variant.family, variant.higher_is_better, variant.value_range) == (
        spec.family,
        spec.higher_is_better,
        spec.value_range,
    )
    assert "ROAD" in variant.description and "U[0,1] noise" in spec.description


def test_every_noise_filled_curve_names_its_road_variant():
    road = {name for name in METRICS if name.endswith("_road")}
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
