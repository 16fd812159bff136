"""Attack-sanity flags: reasons to distrust a run's robust accuracy, shown on the leaderboard as footnotes."""

from __future__ import annotations

import math
from typing import Any

GRADIENT_MASKING, ZERO_GRADIENTS, RANDOMISED, CLEAN_BELOW_STATED = (
    "gradient-masking",
    "zero-gradients",
    "randomised",
    "clean-below-stated",
)
MASKING_SUSPECTED, DYNAMIC, STATEFUL = "gradient-masking-suspected", "dynamic-defence", "stateful-model"
GRID = "grid-inconsistent"
GRID_ALPHA = 0.01  # one-sided sign test: points the grid rounding turned wrong vs right, under "as likely" (p = 1/2)
SQUARE_ALPHA = 0.002  # AutoAttack's own threshold for "Square beat the white-box attacks"
# the gradient probe of the contract check (harness.worker.contract.gradient_probe): honest Fashion-MNIST models
# reach logits of ~20 and input gradients of ~10; a saturated softmax gives exactly zero cross-entropy gradients
LOGIT_SCALE_LIMIT, GRADIENT_SCALE_LIMIT, ZERO_GRADIENT_SHARE = 1e4, 1e4, 0.25


def run_flags(
    autoattack: dict[str, Any],
    contract_flags: list[str],
    metadata: dict[str, Any],
    clean_acc: float,
    n: int,
    attack: str,
) -> list[dict[str, str]]:
    """Flags for a finished run: ``[{"code": ..., "message": ...}]``. ``contract_flags`` holds the contract check's
    codes (``"randomised"``) and flags the parent derived during the run (:func:`masking_flags`)."""
    flags = [dict(f) for f in contract_flags if isinstance(f, dict)]
    contract_flags = [f for f in contract_flags if isinstance(f, str)]
    after = autoattack.get("accuracy_after", {})
    white_box = [v for k, v in after.items() if k not in ("clean", "square")]
    if "square" in after and white_box and after["square"] < min(white_box) - SQUARE_ALPHA:
        flags.append(
            {
                "code": GRADIENT_MASKING,
                "message": (
                    f"black-box Square lowered robust accuracy by {min(white_box) - after['square']:.1%} after the "
                    "white-box attacks: gradients may be masked, so the white-box attacks (and this number) may "
                    "overestimate robustness"
                ),
            }
        )
    if any("zero gradient" in w for w in autoattack.get("warnings", [])):
        flags.append(
            {
                "code": ZERO_GRADIENTS,
                "message": "some points had exactly zero input gradients, which "
                "makes gradient-based attacks unreliable",
            }
        )
    warnings = autoattack.get("warnings", [])
    randomised_by_autoattack = any("randomized defense" in w for w in warnings)
    if "randomised" in contract_flags or attack == "rand" or randomised_by_autoattack:
        flags.append(
            {
                "code": RANDOMISED,
                "message": "the model is randomised; evaluated with AutoAttack's "
                "rand version (EOT), whose numbers vary between runs"
                if attack == "rand"
                else "AutoAttack's own check found the model randomised (its outputs changed between identical "
                "forward passes): the deterministic attacks used here may overestimate robustness; evaluate it "
                "with --attack rand",
            }
        )
    if any("dynamic defense" in w for w in warnings):
        flags.append(
            {
                "code": DYNAMIC,
                "message": "AutoAttack's own check found gradient computations inside the forward pass (a dynamic "
                "defence): its evaluation may be unreliable",
            }
        )
    flags += stateful_flags(autoattack.get("chunks", {}))
    flags += grid_flags(autoattack.get("chunks", {}))
    stated = metadata.get("clean_acc")
    if isinstance(stated, (int, float)) and 0 < stated <= 1:
        margin = max(0.03, 3 * math.sqrt(stated * (1 - stated) / max(n, 1)))
        if stated - clean_acc > margin:
            flags.append(
                {
                    "code": CLEAN_BELOW_STATED,
                    "message": (f"measured clean accuracy {clean_acc:.1%} is far below the stated {stated:.1%}"),
                }
            )
    return flags


def masking_flags(probe: dict[str, float]) -> list[dict[str, str]]:
    """A "gradient masking suspected" flag when the contract check's gradient probe (logit scale, share of clean
    images with exactly zero or non-finite cross-entropy gradients, largest gradient element) looks masked."""
    reasons = []
    if probe["logit_scale"] > LOGIT_SCALE_LIMIT:
        reasons.append(f"logits reach {probe['logit_scale']:.3g} in magnitude (a saturated softmax)")
    if probe["zero_gradient_fraction"] >= ZERO_GRADIENT_SHARE:
        reasons.append(
            f"{probe['zero_gradient_fraction']:.0%} of the probed clean images have exactly zero "
            "cross-entropy input gradients"
        )
    if probe["nonfinite_gradient_fraction"] > 0:
        reasons.append(f"{probe['nonfinite_gradient_fraction']:.0%} of them have non-finite input gradients")
    if probe["gradient_scale"] > GRADIENT_SCALE_LIMIT:
        reasons.append(f"input gradients reach {probe['gradient_scale']:.3g} (exploding)")
    if not reasons:
        return []
    return [
        {
            "code": MASKING_SUSPECTED,
            "message": "gradient masking suspected: "
            + "; ".join(reasons)
            + ": gradient-based attacks (APGD-CE above all) may fail and overestimate robustness",
        }
    ]


def stateful_flags(chunks: dict[str, Any]) -> list[dict[str, str]]:
    """A flag when the fresh worker, started after the attacking worker had exited, classified clean images,
    adversarial examples or random points of the eps-balls differently from the worker that attacked them (a model
    that remembers what it was shown, or knows where it runs)."""
    clean = sum(int(c.get("clean", {}).get("disagreements", 0)) for c in chunks.values())
    adversarial = sum(int(c.get("reclassified", {}).get("disagreements", 0)) for c in chunks.values())
    probes = sum(int(c.get("probe", {}).get("disagreements", 0)) for c in chunks.values())
    if not clean and not adversarial and not probes:
        return []
    return [
        {
            "code": STATEFUL,
            "message": f"a fresh worker, started after the attacking worker had exited, classified {clean} clean "
            f"image(s), {adversarial} adversarial example(s) and {probes} random point(s) of the eps-balls "
            "differently from the worker that attacked them: the model's answers depend on what it was shown "
            "before, or on where it runs (a stateful model?); the fresh worker's answers are the ones stored",
        }
    ]


def grid_flags(chunks: dict[str, Any]) -> list[dict[str, str]]:
    """A flag when rounding the evaluated points of the eps-balls to the data's 1/255 grid (toward the clean image)
    turned correct answers wrong significantly more often than wrong ones right (one-sided sign test at
    :data:`GRID_ALPHA`): a model that answers differently on the grid, where the data lives, than off it, where
    the attacks search.

    >>> grid_flags({"0": {"grid": {"points": 90, "to_wrong": 3, "to_right": 1}}})
    []
    >>> [f["code"] for f in grid_flags({"0": {"grid": {"points": 90, "to_wrong": 40, "to_right": 1}}})]
    ['grid-inconsistent']
    """
    wrong = sum(int(c.get("grid", {}).get("to_wrong", 0)) for c in chunks.values())
    right = sum(int(c.get("grid", {}).get("to_right", 0)) for c in chunks.values())
    points = sum(int(c.get("grid", {}).get("points", 0)) for c in chunks.values())
    if not wrong or sign_test(wrong, right) >= GRID_ALPHA:
        return []
    return [
        {
            "code": GRID,
            "message": f"rounded to the data's 1/255 grid (toward the clean image, inside the same eps-ball), {wrong} "
            f"of {points} evaluated points became misclassified and {right} correctly classified: the model answers "
            "differently on the grid than off it, where the attacks search; those examples are stored as not robust",
        }
    ]


def sign_test(wrong: int, right: int) -> float:
    """One-sided p-value of ``wrong`` or more of ``wrong + right`` flips under a fair coin.

    >>> round(sign_test(7, 0), 4), sign_test(0, 3)
    (0.0078, 1.0)
    """
    total = wrong + right
    return sum(math.comb(total, k) for k in range(wrong, total + 1)) / 2**total
