"""How the leaderboard turns an effect into a verdict on the claim "robust models are more interpretable": one rule
for every section (comparisons, correlations, dose-response), from the effect's sign and the metric's direction."""

from __future__ import annotations

ALPHA = 0.05  # family-wise error rate of each board's Holm-adjusted family
INCONCLUSIVE = "inconclusive (interval contains 0)"


def verdict(direction: int, higher_is_better: bool, inconclusive: str = INCONCLUSIVE) -> str:
    """The claim's verdict from the sign of an effect (0: not established) and the metric's direction.

    >>> verdict(+1, higher_is_better=True), verdict(+1, higher_is_better=False), verdict(0, True)
    ('yes', 'no (the opposite)', 'inconclusive (interval contains 0)')
    """
    if direction == 0:
        return inconclusive
    return "yes" if (direction > 0) == higher_is_better else "no (the opposite)"


def adjusted_verdict(effect: float, p_adjusted: float, higher_is_better: bool) -> str:
    """The verdict of a test whose Holm-adjusted p-value is ``p_adjusted``: the effect's sign when it is below
    :data:`ALPHA`, else inconclusive with the adjusted p.

    >>> adjusted_verdict(-0.2, 0.01, higher_is_better=False), adjusted_verdict(0.2, 0.3, True)
    ('yes', 'inconclusive (adjusted p = 0.3)')
    """
    direction = 0 if not p_adjusted < ALPHA else (1 if effect > 0 else -1)
    return verdict(direction, higher_is_better, f"inconclusive (adjusted p = {p_adjusted:.2g})")


def interval_direction(low: float, high: float) -> int:
    """+1 / -1 when the interval excludes 0 above / below it, else 0."""
    return 0 if low <= 0 <= high else (1 if low > 0 else -1)
