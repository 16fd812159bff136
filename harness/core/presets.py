"""``--preset quick|default|full``: the run settings sized to the question, as defaults that explicit options
override.

- ``default``: the leaderboard's settings (README, Interpretability and Feature visualisation): 100 explained
  images, 16 sanity images, 16 GridPG composites, feature visualisation with its defaults.
- ``quick``: a first look. The explain stage and feature visualisation have costs that do not shrink with n (the
  default's 100 explained images, 16 sanity images, 16 composites, 32 inversions, 300 generated images); quick
  scales each with n at the default's share of a 1000-image run, with a floor that keeps every score defined
  (:func:`quick_settings`), and uses cheaper attributions (expected gradients from 50 samples instead of 200,
  integrated gradients over 2 baselines x 16 steps instead of 4 x 32: ``QUICK_METHOD_OPTIONS``) and fewer feature
  visualisation steps below ``REFERENCE_N`` images (at 1000 and more quick is the default, whose run may become the
  board's row for its model), so a 50-image run of a small model takes about a minute on 2 CPU cores (README, Two
  commands). Its scores have wide intervals and its attributions are noisier: a look, not a leaderboard entry (the
  board ranks the run with the most examples).
- ``full``: everything robint-bench measures: every attribution metric (``--metrics all``), every attribution
  method (``--methods all``), the metrics' reliability, and integrated gradients with the seed paper's 10 baselines
  x 50 steps.

The preset only sets defaults: an option given explicitly wins, and method and feature-visualisation options given
explicitly are applied after the preset's. Imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any

from harness.core.config import RunConfig
from harness.core.errors import HarnessError

PRESETS: dict[str, str] = {
    "quick": "fixed costs scaled with n: a first look in about a minute (README, Two commands)",
    "default": "the leaderboard's settings",
    "full": "every metric and method, reliability, integrated gradients 10 x 50",
}
REFERENCE_N = 1000  # the default run's n: quick keeps each fixed cost's share of it
# quick: (option, the default's value at REFERENCE_N, floor)
_SCALED = (("n_explain", 100, 5), ("n_sanity", 16, 2), ("n_composites", 16, 1))
_FEATUREVIS = (("n_inversion", 32, 4), ("per_class", 30, 3))
QUICK_STEPS = {"inversion_steps": 50, "generation_steps": 20}  # feature visualisation's steps in a quick look
QUICK_METHOD_OPTIONS = (  # the default suite's attributions, cheaper (metrics.suite.DEFAULT_METHOD_OPTIONS: IG 4 x 32)
    "expected_gradients.n_samples=50",
    "integrated_gradients.n_trials=2",
    "integrated_gradients.n_steps=16",
)


def check_preset(name: str) -> str:
    """``name`` when it is a preset, else one error listing them."""
    if name not in PRESETS:
        raise HarnessError(f"--preset {name!r} is unknown", f"use one of: {', '.join(PRESETS)}")
    return name


def _scaled(default: int, floor: int, n: int) -> int:
    """``default``'s share of a ``REFERENCE_N`` run at n, at least ``floor``, at most ``default``.

    >>> _scaled(100, 5, 50), _scaled(16, 2, 50), _scaled(16, 2, 500), _scaled(16, 2, 5000)
    (5, 2, 8, 16)
    """
    return max(floor, min(default, round(default * n / REFERENCE_N)))


def quick_settings(n: int) -> dict[str, Any]:
    """The quick preset's settings for a run of n test images (RunConfig fields; ``method_options`` and
    ``featurevis_options`` as KEY=VALUE strings)."""
    settings: dict[str, Any] = {key: _scaled(default, floor, n) for key, default, floor in _SCALED}
    options = [f"{key}={_scaled(default, floor, n)}" for key, default, floor in _FEATUREVIS]
    if n < REFERENCE_N:  # at the reference n and above quick is the default: its run may become a board row
        settings["method_options"] = QUICK_METHOD_OPTIONS
        options += [f"{key}={value}" for key, value in QUICK_STEPS.items()]
    settings["featurevis_options"] = tuple(options)
    return settings


def preset_settings(name: str, n: int) -> dict[str, Any]:
    """The RunConfig fields preset ``name`` sets for a run of n test images."""
    check_preset(name)
    if name == "quick":
        return quick_settings(n)
    if name == "full":
        return {
            "metrics": "all",
            "methods": "all",
            "reliability": True,
            "method_options": ("integrated_gradients.n_trials=10", "integrated_gradients.n_steps=50"),
        }
    return {}


def apply_preset(config: RunConfig, given: Collection[str] = ()) -> RunConfig:
    """``config`` with its preset's settings for the fields not in ``given`` (the options set explicitly); the
    preset's method and feature-visualisation options come before the explicit ones (later ones win)."""
    settings = preset_settings(config.preset, config.n_examples)
    merged = ("method_options", "featurevis_options")
    changes = {k: v for k, v in settings.items() if k not in given and k not in merged}
    for key in merged:
        if key in settings:
            changes[key] = (*settings[key], *getattr(config, key))
    return replace(config, **changes)
