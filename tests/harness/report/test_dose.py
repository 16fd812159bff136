"""Dose-response across training eps (harness/report/dose.py): families of models that differ only in eps, with
standard training as eps 0; exact permutation p by hand (3 models: 6 orderings)."""

import pytest

from harness.report.dose import Family, dose_response, families
from tests.harness.report.builders import entry, score

GINI = ("expected_gradients", "sparseness")


def _everyone(*_):
    return True


def _fgsm(model, eps, gini, **kw):
    return entry(model, {GINI: score([gini])}, **{"training": "fgsm-rs", "threat": "Linf", "eps": eps, **kw})


def test_families_share_everything_but_eps_and_start_with_their_standard_models():
    entries = [
        entry("std", {GINI: score([0.3])}),
        entry("std_res", architecture="resnet"),
        _fgsm("a05", 0.05, 0.4),
        _fgsm("l2", 1.5, 0.4, threat="L2"),
        _fgsm("a10", 0.1, 0.5),
        _fgsm("a10_long", 0.1, 0.5, epochs=20),
    ]
    found = {family.label: ([e.model for e in models], eps) for family, models, eps in families(entries)}
    assert found == {
        "fgsm-rs Linf cnn 3ep": (["std", "a05", "a10"], [0.0, 0.05, 0.1]),
        "fgsm-rs L2 cnn 3ep": (["std", "l2"], [0.0, 1.5]),
        "fgsm-rs Linf cnn 20ep": (["std", "a10_long"], [0.0, 0.1]),
    }
    assert Family("pgd-at", "Linf", "", None).label == "pgd-at Linf"


def test_a_monotone_family_of_three_has_exact_p_one_in_three():
    entries = [entry("std", {GINI: score([0.3])}), _fgsm("a05", 0.05, 0.4), _fgsm("a10", 0.1, 0.5)]
    (d,) = dose_response(entries, _everyone)
    assert (d.method, d.metric, d.n_models, d.eps_values) == (
        "fgsm-rs Linf cnn 3ep (expected_gradients)",
        "sparseness",
        3,
        (0.0, 0.05, 0.1),
    )
    assert d.rho == pytest.approx(1.0) and d.p_value == pytest.approx(2 / 6) == d.p_adjusted
    assert d.verdict == "inconclusive (adjusted p = 0.33)"


def test_a_family_needs_three_eps_among_its_informative_scores():
    entries = [entry("std", {GINI: score([0.3])}), _fgsm("a05", 0.05, 0.4), _fgsm("a10", 0.1, 0.5)]
    assert dose_response(entries, lambda model, method, metric: model != "a10") == []
    assert dose_response(entries[:2], _everyone) == []
    flat = [entry("std", {GINI: score([0.3])}), _fgsm("a05", 0.05, 0.3), _fgsm("a10", 0.1, 0.3)]
    assert dose_response(flat, _everyone) == []  # no variation: no test
