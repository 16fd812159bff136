"""The one rule that turns an effect into a verdict on the claim (harness/report/verdicts.py)."""

import math

from harness.report.verdicts import ALPHA, adjusted_verdict, interval_direction, verdict


def test_verdict_is_one_rule():
    assert interval_direction(0.1, 0.3) == 1 and interval_direction(-0.3, -0.1) == -1
    assert interval_direction(-0.1, 0.3) == 0
    assert verdict(1, higher_is_better=True) == "yes" and verdict(-1, higher_is_better=False) == "yes"
    assert verdict(1, higher_is_better=False) == "no (the opposite)"
    assert verdict(0, higher_is_better=True).startswith("inconclusive")


def test_adjusted_verdict_needs_an_adjusted_p_below_alpha():
    assert ALPHA == 0.05
    assert adjusted_verdict(0.3, 0.049, higher_is_better=True) == "yes"
    assert adjusted_verdict(0.3, 0.049, higher_is_better=False) == "no (the opposite)"
    assert adjusted_verdict(-0.3, 0.001, higher_is_better=False) == "yes"  # lower is better, and it fell
    assert adjusted_verdict(0.3, 0.05, higher_is_better=True) == "inconclusive (adjusted p = 0.05)"  # not below
    assert adjusted_verdict(0.3, 0.123456, higher_is_better=True) == "inconclusive (adjusted p = 0.12)"
    assert adjusted_verdict(0.3, math.nan, higher_is_better=True) == "inconclusive (adjusted p = nan)"
