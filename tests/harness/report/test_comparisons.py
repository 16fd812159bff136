"""Adversarially trained recipes against their standard baseline (harness/report/comparisons.py), on hand-built
per-image scores: which values are paired, which test each design gets, and the Holm-adjusted verdicts."""

import math

import numpy as np
import pytest
from scipy.stats import ttest_ind

from harness.report.comparisons import NOT_INFORMATIVE, SEVERAL_BASELINES, compare, versus_standard
from harness.report.recipes import Match, recipes
from metrics.stats import holm, recipe_difference
from tests.harness.report.builders import entry, score

GINI = ("expected_gradients", "sparseness")  # higher is better
GRIDPG = ("expected_gradients", "gridpg")
WIGGLE = [0.0, 0.02, -0.02, 0.01, -0.01, 0.0, 0.03, -0.03, 0.0, 0.0]


def _everyone(*_):
    return True


def _match(robust, baseline):
    found = recipes([*robust, *baseline])
    return Match(found[0], found[1])


def _rob(model, scores, **kw):
    return entry(model, scores, **{"training": "pgd-at", "threat": "Linf", "eps": 0.1, **kw})


def test_one_seed_each_is_paired_on_the_images_both_scored():
    """Images 0-9 against 4-13: six shared images, on which the robust model is 0.2 better everywhere; the exact
    sign-flip p of six equal-signed pairs is 2/64."""
    std = entry("std", {GINI: score([0.5 + w for w in WIGGLE], range(10))})
    rob = _rob("rob", {GINI: score([0.7 + w for w in WIGGLE[4:]] + [0.1] * 4, range(4, 14))})
    c = compare(_match([rob], [std]), GINI, _everyone)
    assert (c.kind, c.n, c.seeds, c.model, c.baseline) == ("paired", 6, (1, 1), "rob", "std")
    assert c.diff == pytest.approx(0.2) and c.low == pytest.approx(0.2) and c.high == pytest.approx(0.2)
    assert c.p_value == pytest.approx(2 / 64) and c.verdict == "" and c.informative


def test_keyless_composite_cells_never_pair_but_keyless_images_pair_by_position():
    """Runs stored before keys were recorded: image values are in the same order for every model, GridPG's composite
    cells are not (composites are built from the images each model classifies correctly)."""
    values = [0.5 + w for w in WIGGLE]
    std = entry("std", {GRIDPG: score(values), GINI: score(values)})
    rob = _rob("rob", {GRIDPG: score([v + 0.1 for v in values]), GINI: score([v + 0.1 for v in values])})
    cells = compare(_match([rob], [std]), GRIDPG, _everyone)
    assert cells.verdict == "n/a (no examples scored by both)" and not cells.informative and math.isnan(cells.diff)
    assert cells.note == "the models were scored on different examples"
    images = compare(_match([rob], [std]), GINI, _everyone)
    assert images.n == 10 and images.diff == pytest.approx(0.1)


def test_seeds_on_both_sides_use_the_mixed_model_interval_on_the_shared_images():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.6, 0.05, (2, 12)), rng.normal(0.5, 0.05, (3, 12))
    rob = [_rob(f"rob{i}", {GINI: score(a[i], range(12))}, recipe="pgd") for i in range(2)]
    std = [entry(f"std{i}", {GINI: score(np.r_[b[i], 9.0], [*range(12), 99])}, recipe="std") for i in range(3)]
    c = compare(_match(rob, std), GINI, _everyone)
    reference = recipe_difference(a, b)  # image 99, scored by the standard models only, is left out
    assert (c.kind, c.n, c.seeds, c.model, c.baseline) == ("recipes", 12, (2, 3), "pgd", "std")
    assert (c.diff, c.low, c.high, c.p_value) == pytest.approx(
        (reference.diff, reference.lo, reference.hi, reference.p_value)
    )


def test_a_single_seed_against_several_averages_the_seeds_and_says_so():
    std = [
        entry(f"std{i}", {GINI: score([0.5 + i / 10 + w for w in WIGGLE], range(10))}, recipe="std") for i in range(2)
    ]
    rob = _rob("rob", {GINI: score([0.8 + w for w in WIGGLE], range(10))})
    c = compare(_match([rob], std), GINI, _everyone)
    assert c.kind == "paired" and c.seeds == (1, 2) and c.diff == pytest.approx(0.8 - 0.55)
    assert c.note == "one recipe has a single seed: seed-to-seed spread not included"


def test_set_level_scores_with_seeds_use_welchs_t_over_seeds():
    fid = ("featurevis", "generation_fid")
    a, b = [120.0, 130.0, 125.0], [200.0, 230.0]
    rob = [_rob(f"rob{i}", {fid: score([v], low=v - 5, high=v + 5)}, recipe="pgd") for i, v in enumerate(a)]
    std = [entry(f"std{i}", {fid: score([v], low=v - 5, high=v + 5)}, recipe="std") for i, v in enumerate(b)]
    c = compare(_match(rob, std), fid, _everyone)
    test = ttest_ind(a, b, equal_var=False)
    assert (c.kind, c.n, c.seeds) == ("recipes", 1, (3, 2))
    assert c.diff == pytest.approx(np.mean(a) - np.mean(b))
    assert (c.low, c.high) == pytest.approx(tuple(test.confidence_interval(0.95)))
    assert c.p_value == pytest.approx(test.pvalue)


def test_set_level_scores_with_one_seed_compare_the_stored_intervals():
    fid = ("featurevis", "generation_fid")  # lower is better
    rob = _rob("rob", {fid: score([100.0], low=90.0, high=110.0)})
    apart = compare(_match([rob], [entry("std", {fid: score([200.0], low=180.0, high=220.0)})]), fid, _everyone)
    assert apart.kind == "intervals" and apart.verdict == "yes" and apart.intervals == ((90.0, 110.0), (180.0, 220.0))
    close = compare(_match([rob], [entry("std", {fid: score([120.0], low=105.0, high=135.0)})]), fid, _everyone)
    assert close.verdict == "inconclusive (intervals overlap)" and close.diff == pytest.approx(-20.0)
    assert not close.per_example and math.isnan(close.p_value)


def test_verdicts_come_from_holm_adjusted_p_values_and_skip_uninformative_scores():
    """Two robust recipes against one standard model. ``rob_b``'s score does not beat its controls: no verdict,
    and it is left out of the Holm family, so ``rob_a``'s p is adjusted over one test."""
    std = entry("std", {GINI: score([0.5 + w for w in WIGGLE], range(10))})
    rob_a = _rob("rob_a", {GINI: score([0.7 + w for w in WIGGLE], range(10))}, eps=0.1)
    rob_b = _rob("rob_b", {GINI: score([0.6 + w for w in WIGGLE], range(10))}, eps=0.2)
    informative = lambda model, method, metric: model != "rob_b"  # noqa: E731
    label, found = versus_standard(recipes([std, rob_a, rob_b]), informative)
    assert label == "std"
    a, b = found
    assert a.verdict == "yes" and a.p_adjusted == pytest.approx(holm([a.p_value, math.nan])[0]) == a.p_value
    assert b.verdict == "not informative (does not beat its controls)" and b.note == NOT_INFORMATIVE
    assert not b.informative and math.isnan(b.p_adjusted)


def test_the_baseline_label_says_when_each_architecture_has_its_own():
    std_cnn = entry("std_cnn", {GINI: score([0.5, 0.6], [0, 1])})
    std_res = entry("std_res", {GINI: score([0.5, 0.6], [0, 1])}, architecture="resnet")
    rob_cnn = _rob("rob_cnn", {GINI: score([0.7, 0.8], [0, 1])})
    rob_res = _rob("rob_res", {GINI: score([0.7, 0.8], [0, 1])}, architecture="resnet")
    label, found = versus_standard(recipes([std_cnn, std_res, rob_cnn, rob_res]), _everyone)
    assert label == SEVERAL_BASELINES and [(c.model, c.baseline) for c in found] == [
        ("rob_cnn", "std_cnn"),
        ("rob_res", "std_res"),
    ]
    assert versus_standard(recipes([std_cnn, std_res]), _everyone) == (None, [])
    assert compare(_match([rob_cnn], [entry("no_scores")]), GINI, _everyone) is None
