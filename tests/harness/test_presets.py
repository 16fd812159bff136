"""harness.core.presets: quick scales each fixed cost with n (the default's share of a 1000-image run, with floors),
explicit options win, and the preset's method and feature-visualisation options come before the explicit ones."""

from __future__ import annotations

import pytest

from harness.core.config import RunConfig
from harness.core.errors import HarnessError
from harness.core.presets import PRESETS, apply_preset, check_preset, preset_settings, quick_settings
from harness.pipeline.resolve import resolve_featurevis, resolve_suite


def test_quick_scales_every_fixed_cost_with_n():
    assert quick_settings(50) == {
        "n_explain": 5,
        "n_sanity": 2,
        "n_composites": 1,
        "method_options": (
            "expected_gradients.n_samples=50",
            "integrated_gradients.n_trials=2",
            "integrated_gradients.n_steps=16",
        ),
        "featurevis_options": ("n_inversion=4", "per_class=3", "inversion_steps=50", "generation_steps=20"),
    }
    at_500 = quick_settings(500)
    assert (at_500["n_explain"], at_500["n_sanity"], at_500["n_composites"]) == (50, 8, 8)
    at_full = quick_settings(10_000)  # never above the default's
    assert (at_full["n_explain"], at_full["n_sanity"], at_full["n_composites"]) == (100, 16, 16)
    assert at_full["featurevis_options"] == ("n_inversion=32", "per_class=30") and "method_options" not in at_full
    # from the reference n on quick is the default preset: a quick run there may become the board's row
    suite, default = resolve_suite(apply_preset(RunConfig(n_examples=1000, preset="quick"))), resolve_suite(RunConfig())
    assert suite == default
    fv = resolve_featurevis(apply_preset(RunConfig(n_examples=1000, preset="quick")))
    assert fv == resolve_featurevis(RunConfig(n_examples=1000))


def test_the_suite_and_feature_visualisation_a_quick_run_resolves_to():
    config = apply_preset(RunConfig(n_examples=50, preset="quick"))
    suite, featurevis = resolve_suite(config), resolve_featurevis(config)
    assert (suite.n_explain, suite.n_sanity, suite.n_composites) == (5, 2, 1)
    options = {(m, k): v for m, k, v in suite.method_options}
    assert options[("expected_gradients", "n_samples")] == 50
    assert (options[("integrated_gradients", "n_trials")], options[("integrated_gradients", "n_steps")]) == (2, 16)
    assert (featurevis.n_inversion, featurevis.inversion_steps, featurevis.per_class) == (4, 50, 3)
    assert featurevis.generation_steps == 20
    default = apply_preset(RunConfig(n_examples=50))
    assert default == RunConfig(n_examples=50)  # the default preset changes nothing


def test_explicit_options_win_over_the_preset():
    config = RunConfig(n_examples=50, preset="quick", n_sanity=5, featurevis_options=("inversion_steps=7",))
    out = apply_preset(config, given={"n_sanity", "featurevis_options"})
    assert out.n_sanity == 5 and out.n_explain == 5 and out.n_composites == 1
    assert out.featurevis_options[-1] == "inversion_steps=7"  # after the preset's: it wins in resolve_featurevis
    assert resolve_featurevis(out).inversion_steps == 7
    given = RunConfig(n_examples=50, preset="quick", method_options=("expected_gradients.n_samples=200",))
    suite = resolve_suite(apply_preset(given, given={"method_options"}))
    options = {(m, k): v for m, k, v in suite.method_options}
    assert options[("expected_gradients", "n_samples")] == 200 and options[("integrated_gradients", "n_steps")] == 16


def test_full_measures_everything():
    full = apply_preset(RunConfig(preset="full"))
    assert (full.metrics, full.methods, full.reliability) == ("all", "all", True)
    suite = resolve_suite(full)
    assert dict(((m, k), v) for m, k, v in suite.method_options)[("integrated_gradients", "n_steps")] == 50
    assert "infidelity" in suite.metrics and "saliency" in suite.methods
    assert set(PRESETS) == {"quick", "default", "full"} and preset_settings("default", 50) == {}


def test_an_unknown_preset_is_one_line():
    with pytest.raises(HarnessError, match="--preset 'fast' is unknown") as err:
        check_preset("fast")
    assert err.value.fix == "use one of: quick, default, full"
