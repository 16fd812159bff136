"""Attack-sanity flags: reasons to distrust a run's robust accuracy, shown on the leaderboard as footnotes."""

from __future__ import annotations

import math
from typing import Any

GRADIENT_MASKING, ZERO_GRADIENTS, RANDOMISED, CLEAN_BELOW_STATED = (
    "gradient-masking", "zero-gradients", "randomised", "clean-below-stated",
)  # fmt: skip
SQUARE_ALPHA = 0.002  # AutoAttack's own threshold for "Square beat the white-box attacks"


def run_flags(autoattack: dict[str, Any], contract_flags: list[str], metadata: dict[str, Any], clean_acc: float,
              n: int, attack: str) -> list[dict[str, str]]:  # fmt: skip
    """Flags for a finished run: ``[{"code": ..., "message": ...}]``."""
    flags = []
    after = autoattack.get("accuracy_after", {})
    white_box = [v for k, v in after.items() if k not in ("clean", "square")]
    if "square" in after and white_box and after["square"] < min(white_box) - SQUARE_ALPHA:
        flags.append({"code": GRADIENT_MASKING, "message": (
            f"black-box Square lowered robust accuracy by {min(white_box) - after['square']:.1%} after the "
            "white-box attacks: gradients may be masked, so the white-box attacks (and this number) may "
            "overestimate robustness")})
    if any("zero gradient" in w for w in autoattack.get("warnings", [])):
        flags.append({"code": ZERO_GRADIENTS, "message": "some points had exactly zero input gradients, which "
                      "makes gradient-based attacks unreliable"})  # fmt: skip
    if "randomised" in contract_flags or attack == "rand":
        flags.append({"code": RANDOMISED, "message": "the model is randomised; evaluated with AutoAttack's "
                      "rand version (EOT), whose numbers vary between runs"})  # fmt: skip
    stated = metadata.get("clean_acc")
    if isinstance(stated, (int, float)) and 0 < stated <= 1:
        margin = max(0.03, 3 * math.sqrt(stated * (1 - stated) / max(n, 1)))
        if stated - clean_acc > margin:
            flags.append({"code": CLEAN_BELOW_STATED, "message": (
                f"measured clean accuracy {clean_acc:.1%} is far below the stated {stated:.1%}")})
    return flags
