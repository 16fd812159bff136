"""Dose-response across training eps (harness/report/dose.py): families of recipes that differ only in eps with the
epochs-matched standard recipe as eps 0, one point per eps level; exact permutation p by hand (5 levels: 120
orderings; 4 levels cannot reject at 5%)."""

from __future__ import annotations

import pytest

from harness.report.dose import Family, dose_response, families
from harness.report.recipes import recipes
from tests.harness.report.builders import entry, score

EG = "expected_gradients"
RAND = (EG, "randomisation")


def everyone(*_):
    return True


def _model(name, value, *, eps=None, epochs=3, seed=0, **kw):
    kw = {"training": "fgsm-rs", "threat": "Linf", "eps": eps, **kw} if eps is not None else kw
    label = f"{kw.get('training', 'standard')} {kw.get('threat', '')} {eps} {epochs}ep"  # as the board labels recipes
    return entry(
        name, {RAND: score([value, value], [0, 1])}, epochs=epochs, correct=[0, 1], seed=seed, recipe=label, **kw
    )


def test_families_share_everything_but_eps_and_start_with_their_epochs_matched_standard_recipe():
    found = recipes(
        [
            _model("std3", 0.6),
            _model("std8", 0.6, epochs=8),
            _model("a05", 0.5, eps=0.05),
            _model("l2", 0.5, eps=1.5, threat="L2"),
            _model("a10", 0.4, eps=0.1),
            _model("long", 0.4, eps=0.1, epochs=20),
        ]
    )
    by = {f.label: [r.entries[0].model for r in members] for f, members in families(found)}
    assert by == {
        "fgsm-rs Linf cnn 3ep": ["std3", "a05", "a10"],
        "fgsm-rs L2 cnn 3ep": ["std3", "l2"],
        "fgsm-rs Linf cnn 20ep": ["std8", "long"],  # no 20-epoch standard recipe: the default one
    }
    assert Family("pgd-at", "Linf", "", None).label == "pgd-at Linf"


def test_five_eps_levels_of_recipe_means_with_an_exact_p_of_one_in_sixty():
    models = [_model("std", 0.6, seed=0), _model("std_b", 0.64, seed=1)]  # one recipe, two seeds: one level
    models += [_model(f"e{i}", 0.55 - 0.05 * i, eps=eps) for i, eps in enumerate((0.03, 0.05, 0.07, 0.1))]
    (d,) = dose_response(recipes(models), everyone)
    assert (d.metric, d.n_models, d.eps_values) == ("randomisation", 6, (0.0, 0.03, 0.05, 0.07, 0.1))
    assert d.rho == pytest.approx(-1.0) and d.p_value == pytest.approx(2 / 120) == d.p_adjusted
    assert d.smallest_p == pytest.approx(2 / 120) and d.verdict == "yes"  # lower randomisation: more interpretable
    assert d.baseline == "standard  None 3ep"


def test_four_levels_cannot_reject_and_the_gate_or_too_few_levels_give_no_test():
    four = [_model("std", 0.6)] + [_model(f"e{i}", 0.5 - 0.1 * i, eps=eps) for i, eps in enumerate((0.03, 0.05, 0.1))]
    (d,) = dose_response(recipes(four), everyone)
    assert d.p_value == pytest.approx(2 / 24) and d.smallest_p == pytest.approx(2 / 24)
    assert d.verdict.startswith("inconclusive")
    assert dose_response(recipes(four), lambda method, metric: False) == []
    assert dose_response(recipes(four[:2]), everyone) == []
    flat = [_model("std", 0.5)] + [_model(f"e{i}", 0.5, eps=eps) for i, eps in enumerate((0.03, 0.05))]
    assert dose_response(recipes(flat), everyone) == []  # no variation: no test
