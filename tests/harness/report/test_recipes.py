"""Training recipes and their standard baselines (harness/report/recipes.py)."""

from harness.report.recipes import baselines, matches, recipes, unmatched_recipes
from tests.harness.report.builders import entry


def test_models_of_one_recipe_are_its_seeds():
    entries = [
        entry("std_s0"),
        entry("rob_s0", training="pgd-at", threat="Linf", eps=0.1),
        entry("std_s1"),
        entry("loose", training="", recipe=""),
    ]
    found = recipes(entries)
    assert [(r.label, [e.model for e in r.entries]) for r in found] == [
        ("standard cnn", ["std_s0", "std_s1"]),
        ("pgd-at Linf 0.1 cnn", ["rob_s0"]),
        ("loose", ["loose"]),  # no recipe: stands alone under its model's name
    ]
    assert [r.name for r in found] == ["standard cnn", "rob_s0", "loose"]  # one seed: the model's name
    assert [r.robust for r in found] == [False, True, False]


def test_each_robust_recipe_is_matched_with_the_one_standard_recipe_of_its_architecture():
    entries = [
        entry("std_cnn"),
        entry("std_res_20", architecture="resnet", epochs=20, recipe="standard resnet 20ep"),
        entry("std_res_3", architecture="resnet", recipe="standard resnet 3ep"),
        entry("rob_cnn", training="fgsm-rs", threat="Linf", eps=0.1),
        entry("rob_res", training="fgsm-rs", threat="Linf", eps=0.1, architecture="resnet"),
        entry("rob_vit", training="fgsm-rs", threat="Linf", eps=0.1, architecture="vit"),
        entry("rob_none", training="fgsm-rs", threat="Linf", eps=0.2, architecture=""),
    ]
    found = recipes(entries)
    assert [(m.robust.name, m.baseline.name) for m in matches(found)] == [("rob_cnn", "std_cnn")]
    assert [b.name for b in baselines(found, found[4])] == ["std_res_20", "std_res_3"]
    assert unmatched_recipes(found) == [
        "rob_res: 2 standard recipes of architecture resnet",
        "rob_vit: no standard recipe of architecture vit",
        "rob_none: no standard recipe of architecture unrecorded",
    ]
