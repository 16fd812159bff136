"""Attack-sanity flags from AutoAttack's per-attack accuracies, its warnings, and the submission's claims."""

from harness.attack.sanity import run_flags


def _codes(flags):
    return [f["code"] for f in flags]


def test_square_beating_white_box_attacks_flags_gradient_masking():
    autoattack = {"accuracy_after": {"clean": 0.9, "apgd-ce": 0.70, "apgd-t": 0.69, "fab-t": 0.69, "square": 0.60}}
    assert _codes(run_flags(autoattack, [], {}, 0.9, 1000, "standard")) == ["gradient-masking"]
    autoattack["accuracy_after"]["square"] = 0.689  # within AutoAttack's 0.2% tolerance
    assert run_flags(autoattack, [], {}, 0.9, 1000, "standard") == []


def test_zero_gradients_randomness_and_clean_accuracy_claims():
    autoattack = {"accuracy_after": {}, "warnings": ["there are 3 points with zero gradient! This might ..."]}
    assert _codes(run_flags(autoattack, ["randomised"], {"clean_acc": 0.95}, 0.80, 1000, "rand")) == [
        "zero-gradients",
        "randomised",
        "clean-below-stated",
    ]
    # 0.86 stated, 0.85 measured on 1000 examples: within sampling error, no flag
    assert run_flags({"accuracy_after": {}}, [], {"clean_acc": 0.86}, 0.85, 1000, "standard") == []
