"""The metric table's fields that the analysis reads: curve metrics under both fills and both scored outputs, the
output variants, which metrics have a verdict, a bar or a place in the headline, and why not."""

from __future__ import annotations

import math

import pytest

from metrics.controls import INPUT_CONTROLS
from metrics.registry import HEADLINE_METRICS, METRICS, output_variant

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
