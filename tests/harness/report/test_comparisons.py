"""Adversarially trained recipes against their standard baseline (harness/report/comparisons.py), on hand-built
per-image scores: recipe verdicts only with three seeds a side (mixed-model t over seeds and images, Holm-adjusted),
checkpoints without a verdict below that, the epochs-matched baseline, the gate, and normalised values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import ttest_ind

from harness.report.comparisons import compare, uncompared, versus_standard
from harness.report.recipes import recipes
from harness.report.values import Basis
from metrics.stats import holm, paired_comparison, recipe_difference
from tests.harness.report.builders import entry, score

EG = "expected_gradients"
RAND = (EG, "randomisation")  # lower is better, image-paired, raw
FID = ("featurevis", "generation_fid")
RNG = np.random.default_rng(0)


def everyone(*_):
    return True


def _std(i, values, keys, *, epochs=3, correct=None, **kw):
    return entry(f"std{epochs}_{i}", {RAND: score(values, keys)}, epochs=epochs, correct=correct, seed=i, **kw)


def _rob(i, values, keys, *, eps=0.1, correct=None, **kw):
    kw = {"training": "fgsm-rs", "threat": "Linf", "eps": eps, "epochs": 3, **kw}
    return entry(f"rob{eps}_{i}", {RAND: score(values, keys)}, correct=correct, seed=i, **kw)


def test_three_seeds_a_side_get_a_recipe_verdict_on_the_images_every_model_classifies_correctly():
    a, b = RNG.normal(0.4, 0.05, (3, 12)), RNG.normal(0.6, 0.05, (3, 12))
    keys = list(range(12))
    rob = [_rob(i, a[i], keys, correct=[k for k in keys if k != 5]) for i in range(3)]
    std = [_std(i, b[i], keys, correct=[k for k in keys if k != 7]) for i in range(3)]
    (c,) = versus_standard(recipes([*std, *rob]), everyone)
    kept = [k for k in keys if k not in (5, 7)]
    reference = recipe_difference(a[:, kept], b[:, kept])
    assert (c.kind, c.n, c.seeds, c.normalised, c.matched) == ("recipes", 10, (3, 3), False, True)
    assert (c.diff, c.low, c.high, c.p_value) == pytest.approx(
        (reference.diff, reference.lo, reference.hi, reference.p_value)
    )
    assert c.p_adjusted == pytest.approx(c.p_value)  # one test in the family
    assert c.verdict == "yes"  # randomisation is lower-is-better: the robust recipe's lower scores support the claim
    every = compare(recipes(rob)[0], recipes(std)[0], RAND, everyone, Basis(correct_only=False))
    assert every.n == 12 and every.diff == pytest.approx(recipe_difference(a, b).diff)


def test_fewer_seeds_show_the_checkpoints_difference_without_a_verdict_or_a_place_in_the_holm_family():
    keys = list(range(12))
    std = [_std(i, RNG.normal(0.6, 0.05, 12), keys) for i in range(3)]
    one = _rob(0, RNG.normal(0.4, 0.05, 12), keys)
    a, b = one.scores[RAND], [s.scores[RAND] for s in std]
    (c,) = versus_standard(recipes([*std, one]), everyone)
    reference = paired_comparison(np.asarray(a.values), np.mean([s.values for s in b], axis=0))
    assert (c.kind, c.seeds, c.verdict) == ("checkpoints", (1, 3), "no recipe verdict (1 vs 3 seeds)")
    assert (c.diff, c.p_value) == pytest.approx((reference.diff, reference.p_value))
    assert not c.informative and math.isnan(c.p_adjusted) and "fewer than 3 seeds" in c.note


def test_a_score_whose_method_does_not_beat_its_bar_gets_no_verdict_and_leaves_the_holm_family():
    keys = list(range(12))
    std = [_std(i, RNG.normal(0.6, 0.05, 12), keys) for i in range(3)]
    rob = [_rob(i, RNG.normal(0.4, 0.05, 12), keys) for i in range(3)]
    (c,) = versus_standard(recipes([*std, *rob]), lambda method, metric: False)
    assert c.kind == "recipes" and not c.informative and c.verdict.startswith("no verdict (does not beat its bar")
    assert math.isnan(c.p_adjusted) and not math.isnan(c.p_value)
    two = versus_standard(
        recipes([*std, *rob, *[_rob(i, RNG.normal(0.5, 0.05, 12), keys, eps=0.2) for i in range(3)]]), everyone
    )
    assert [c.p_adjusted for c in two] == pytest.approx(list(holm([c.p_value for c in two])))


def test_the_primary_baseline_is_trained_for_as_many_epochs_and_the_default_is_a_sensitivity_analysis():
    keys = list(range(12))
    std3 = [_std(i, RNG.normal(0.6, 0.05, 12), keys, epochs=3) for i in range(3)]
    std8 = [_std(i, RNG.normal(0.7, 0.05, 12), keys, epochs=8, recipe="standard cnn 8ep") for i in range(3)]
    std8.append(_std(3, RNG.normal(0.7, 0.05, 12), keys, epochs=8, recipe="standard cnn 8ep"))
    rob = [_rob(i, RNG.normal(0.4, 0.05, 12), keys) for i in range(3)]
    for e in std3:
        object.__setattr__(e, "recipe", "standard cnn 3ep")
    found = recipes([*std3, *std8, *rob])
    (primary,) = versus_standard(found, everyone)
    (default,) = versus_standard(found, everyone, default_baseline=True)
    assert primary.baseline == "standard cnn 3ep" and primary.matched
    assert default.baseline == "standard cnn 8ep" and not default.matched and default.seeds == (3, 4)


def test_normalised_recipes_that_merely_react_less_do_not_differ():
    """The robust recipe's method, floor and ceiling are the standard one's mixed with the uniform distribution
    (scaled by 0.5 plus a constant): raw scores differ, normalised ones are identical."""
    keys = list(range(10))

    def model(name, m, f, c, **kw):
        scores = {
            (EG, "abpc_logit"): score(m, keys),
            ("bound_floor", "abpc_logit"): score(f, keys),
            ("bound_ceiling", "abpc_logit"): score(c, keys),
        }
        return entry(name, scores, **kw)

    std, rob = [], []
    for i in range(3):
        m, f, c = RNG.uniform(0.2, 0.4, 10), RNG.uniform(0, 0.05, 10), RNG.uniform(0.6, 0.8, 10)
        std.append(model(f"s{i}", m, f, c, seed=i))
        rob.append(model(f"r{i}", 0.5 * m + 0.1, 0.5 * f + 0.1, 0.5 * c + 0.1, training="pgd-at", eps=0.1, seed=i))
    (c,) = versus_standard(recipes([*std, *rob]), everyone)
    assert c.normalised and c.diff == pytest.approx(0.0, abs=1e-12)
    (raw,) = versus_standard(recipes([*std, *rob]), everyone, basis=Basis(normalised=False))
    assert not raw.normalised and raw.diff < -0.05


def test_set_level_scores_use_welchs_t_over_three_seeds_and_intervals_below():
    a, b = [120.0, 130.0, 125.0], [200.0, 230.0, 215.0]
    rob = [
        entry(f"r{i}", {FID: score([v], low=v - 5, high=v + 5)}, training="pgd-at", eps=0.1) for i, v in enumerate(a)
    ]
    std = [entry(f"s{i}", {FID: score([v], low=v - 5, high=v + 5)}) for i, v in enumerate(b)]
    (c,) = versus_standard(recipes([*std, *rob]), everyone)
    test = ttest_ind(a, b, equal_var=False)
    assert (c.kind, c.n, c.seeds) == ("recipes", 1, (3, 3)) and c.verdict == "yes"
    assert (c.low, c.high, c.p_value) == pytest.approx((*test.confidence_interval(0.95), test.pvalue))
    (few,) = versus_standard(recipes([*std, rob[0]]), everyone)
    assert few.kind == "intervals" and few.verdict == "no recipe verdict (yes)" and few.intervals[0] == (115.0, 125.0)


def test_recipes_without_a_standard_recipe_of_their_architecture_are_listed():
    std = _std(0, [0.5, 0.6], [0, 1])
    res = _rob(0, [0.5, 0.6], [0, 1], architecture="resnet")
    assert versus_standard(recipes([std, res]), everyone) == []
    assert uncompared(recipes([std, res])) == ["rob0.1_0: no standard recipe of architecture resnet"]
    assert compare(recipes([res])[0], recipes([entry("bare")])[0], RAND, everyone) is None
