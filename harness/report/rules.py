"""The board's declared rules: which models enter its tests, on which images, against which baseline and with how
many seeds. Each rule is fixed here, before any outcome is looked at, and none of them reads a test's outcome (an
interpretability score); the board prints them (:data:`STATEMENTS`).

- **Models** (:func:`inclusion`): a model enters the comparisons, correlations and dose-response tests when its clean
  accuracy is within :data:`ACCURACY_MARGIN` of the standard recipe of its architecture (the best recipe mean among
  the architecture's standard recipes): a model that did not train (e.g. FGSM-RS at eps 0.15, 58% clean) is shown
  but drives no trend. A model without a recorded architecture or whose architecture has no standard recipe on the
  board is included (there is nothing to hold it to).
- **Images** (:func:`correct_images`): the primary analysis scores every compared model on the test images all of
  them classify correctly (an attribution of the true label on a misclassified image explains a class the model does
  not predict); all scored images are a sensitivity analysis.
- **Baselines** (:func:`baselines`): an adversarially trained recipe is compared with the standard recipe of its
  architecture trained for the same number of epochs (the primary baseline, which takes the training budget out of
  the comparison) and with the architecture's default standard recipe (the one with the most seeds, then the most
  epochs), when they differ.
- **Seeds** (:data:`MIN_SEEDS`): a verdict about a training recipe needs at least this many seeds on both sides; a
  recipe with fewer is shown with its checkpoints' difference and gets no recipe verdict.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from harness.report.entries import Entry
from harness.report.recipes import Recipe

ACCURACY_MARGIN = 0.15  # clean accuracy below the architecture's standard recipe by more than this: left out
MIN_SEEDS = 3  # seeds per recipe (both sides) for a recipe verdict

STATEMENTS: tuple[str, ...] = (
    f"Models: a model enters the comparisons, correlations and dose-response tests when its clean accuracy is within "
    f"{round(100 * ACCURACY_MARGIN)} points of the best standard recipe of its architecture (recipe mean over seeds); "
    "the others are shown but enter no test.",
    "Images: each test scores its models on the test images every one of them classifies correctly (primary); all "
    "scored images are a sensitivity row.",
    "Baselines: each adversarially trained recipe is compared with the standard recipe of its architecture trained "
    "for as many epochs (primary), and with the architecture's default standard recipe (most seeds, then most "
    "epochs) when that is another one.",
    f"Seeds: a recipe verdict needs at least {MIN_SEEDS} seeds on both sides; a recipe with fewer shows its "
    "checkpoints' difference without a verdict.",
    "Units: recipe comparisons use seeds x images (mixed-model t); the across-model test uses one point per recipe "
    "(its seeds' mean); the dose-response test one point per training eps (its recipes' mean).",
    "Metrics: a score enters a test only where a control can be a null for it (complexity is descriptive); none of "
    "these rules looks at a test's outcome.",
)


@dataclass(frozen=True)
class Inclusion:
    """Whether a model enters the board's tests, and why not."""

    model: str
    included: bool
    reason: str = ""


def reference_accuracy(recipes: Iterable[Recipe], architecture: str) -> float | None:
    """The best mean clean accuracy among the standard recipes of ``architecture`` (None when it has none)."""
    means = [
        float(np.mean([e.clean_acc for e in r.entries]))
        for r in recipes
        if r.training == "standard" and r.architecture == architecture
    ]
    return max(means) if means else None


def inclusion(recipes: list[Recipe]) -> dict[str, Inclusion]:
    """Every model of the board's recipes with its :class:`Inclusion` under the accuracy rule."""
    out = {}
    for recipe in recipes:
        reference = reference_accuracy(recipes, recipe.architecture) if recipe.architecture else None
        for e in recipe.entries:
            if reference is None or e.clean_acc >= reference - ACCURACY_MARGIN - 1e-12:
                out[e.model] = Inclusion(e.model, True)
            else:
                out[e.model] = Inclusion(
                    e.model,
                    False,
                    f"clean accuracy {100 * e.clean_acc:.1f}% is more than {round(100 * ACCURACY_MARGIN)} points below "
                    f"its architecture's standard recipe ({100 * reference:.1f}%)",
                )
    return out


def included_recipes(recipes: list[Recipe], rule: dict[str, Inclusion]) -> list[Recipe]:
    """The recipes with only their included models (recipes left without one dropped)."""
    out = []
    for r in recipes:
        kept = [e for e in r.entries if rule[e.model].included]
        if kept:
            out.append(Recipe(r.label, r.training, r.eps, kept, r.architecture))
    return out


def correct_images(entries: Iterable[Entry]) -> frozenset[int] | None:
    """The test images every entry classifies correctly (None when an entry's per-example results are unknown)."""
    sets = [e.clean_correct for e in entries]
    if not sets or any(s is None for s in sets):
        return None
    common = set(sets[0])
    for s in sets[1:]:
        common &= s
    return frozenset(common)


def epochs_of(recipe: Recipe) -> int | None:
    """The recipe's training epochs (its models share them)."""
    return recipe.entries[0].epochs if recipe.entries else None


def default_standard(recipes: list[Recipe], architecture: str) -> Recipe | None:
    """The architecture's default standard recipe: the most seeds, then the most epochs (None when it has none)."""
    standard = [r for r in recipes if r.training == "standard" and r.architecture == architecture]
    if not standard:
        return None
    return max(standard, key=lambda r: (len(r.entries), epochs_of(r) or 0, r.label))


@dataclass(frozen=True)
class Baselines:
    """An adversarially trained recipe's baselines: ``matched`` trained for as many epochs (None when the board has
    none), ``default`` the architecture's default standard recipe (None when it has no standard recipe)."""

    matched: Recipe | None
    default: Recipe | None

    @property
    def primary(self) -> Recipe | None:
        """The baseline of the primary analysis: the epochs-matched one, else the default."""
        return self.matched or self.default


def baselines(recipes: list[Recipe], recipe: Recipe) -> Baselines:
    """``recipe``'s standard baselines among ``recipes`` (same architecture; see :class:`Baselines`)."""
    same = [
        r
        for r in recipes
        if r.training == "standard" and r.architecture == recipe.architecture and epochs_of(r) == epochs_of(recipe)
    ]
    matched = max(same, key=lambda r: (len(r.entries), r.label)) if same else None
    return Baselines(matched, default_standard(recipes, recipe.architecture))
