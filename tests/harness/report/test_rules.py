"""The board's declared rules (harness/report/rules.py): inclusion by clean accuracy, the images every compared model
classifies correctly, the epochs-matched and default standard baselines, on hand-built recipes."""

from harness.report.recipes import recipes
from harness.report.rules import (
    ACCURACY_MARGIN,
    baselines,
    correct_images,
    default_standard,
    included_recipes,
    inclusion,
    reference_accuracy,
)
from tests.harness.report.builders import entry


def _zoo():
    return [
        entry("std", clean=0.91, epochs=8),
        entry("std_s1", clean=0.89, epochs=8),
        entry("std_e3", clean=0.88, epochs=3),
        entry("fgsm", training="fgsm-rs", threat="Linf", eps=0.1, clean=0.85, epochs=3),
        entry("fgsm_big", training="fgsm-rs", threat="Linf", eps=0.15, clean=0.58, epochs=3),
        entry("pgd", training="pgd-at", threat="Linf", eps=0.1, clean=0.86, epochs=20),
        entry("other", training="fgsm-rs", threat="Linf", eps=0.1, clean=0.3, architecture="resnet", epochs=3),
    ]


def _recipes():
    entries = _zoo()
    for e in entries:  # a recipe per (training, eps, architecture, epochs), as the board labels them
        object.__setattr__(e, "recipe", f"{e.training} {e.eps_trained} {e.architecture} {e.epochs}ep")
    return recipes(entries)


def test_the_reference_is_the_best_standard_recipe_mean_of_the_architecture():
    found = _recipes()
    assert reference_accuracy(found, "cnn") == 0.9  # (0.91 + 0.89) / 2 beats the 3-epoch recipe's 0.88
    assert reference_accuracy(found, "resnet") is None


def test_a_model_far_below_its_architectures_standard_recipe_is_left_out_with_the_reason():
    rule = inclusion(_recipes())
    assert ACCURACY_MARGIN == 0.15
    assert rule["fgsm"].included and rule["pgd"].included and rule["std_e3"].included
    assert not rule["fgsm_big"].included
    assert "58.0%" in rule["fgsm_big"].reason and "90.0%" in rule["fgsm_big"].reason
    assert rule["other"].included  # no standard recipe of its architecture: nothing to hold it to
    kept = included_recipes(_recipes(), rule)
    assert sorted(e.model for r in kept for e in r.entries) == ["fgsm", "other", "pgd", "std", "std_e3", "std_s1"]


def test_the_primary_baseline_is_the_epochs_matched_standard_recipe_and_the_default_has_most_seeds():
    found = _recipes()
    by = {r.entries[0].model: r for r in found}
    fgsm, pgd = baselines(found, by["fgsm"]), baselines(found, by["pgd"])
    assert fgsm.matched is by["std_e3"] and fgsm.default is by["std"] and fgsm.primary is by["std_e3"]
    assert pgd.matched is None and pgd.primary is by["std"]  # no 20-epoch standard recipe: the default
    assert default_standard(found, "cnn") is by["std"]  # two seeds beat one
    assert baselines(found, by["other"]).primary is None


def test_correct_images_are_those_every_model_classifies_correctly():
    a = entry("a", correct=[0, 1, 2, 5])
    b = entry("b", correct=[1, 2, 3, 5])
    assert correct_images([a, b]) == frozenset({1, 2, 5})
    assert correct_images([a, entry("c")]) is None  # per-example results unknown for c
