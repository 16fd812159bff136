"""Which rows a board ranks: one attack protocol at one n (RobustBench's rule), the others apart."""

from __future__ import annotations

from dataclasses import replace

from harness.report.protocols import Protocol, protocol_of, ranked_protocol, split
from tests.harness.report.builders import entry


def _row(model: str, attack: str, n: int):
    return replace(entry(model), attack=attack, n=n)


def test_standard_on_the_most_images_is_ranked_even_when_other_attacks_are_the_majority():
    rows = [
        _row("a", "apgd-ce,apgd-t", 1000),
        _row("b", "standard", 500),
        _row("c", "apgd-ce,apgd-t", 1000),
        _row("d", "standard", 1000),
        _row("e", "apgd-ce", 2000),
        _row("f", "standard", 1000),
    ]
    assert ranked_protocol(rows) == Protocol("standard", 1000)
    ranked, others = split(rows)
    assert [e.model for e in ranked] == ["d", "f"]  # the board's order kept
    # the others: most examples first, then by attack, then the board's order
    assert [e.model for e in others] == ["e", "a", "c", "b"]
    assert [protocol_of(e).badge for e in others] == [
        "apgd-ce, n=2000",
        "apgd-ce + apgd-t, n=1000",
        "apgd-ce + apgd-t, n=1000",
        "AutoAttack standard, n=500",
    ]


def test_without_standard_rows_the_attack_most_rows_share_at_the_largest_n():
    rows = [_row("a", "apgd-ce", 1000), _row("b", "apgd-t", 1000), _row("c", "apgd-t", 1000), _row("d", "x", 50)]
    assert ranked_protocol(rows) == Protocol("apgd-t", 1000)
    tie = [_row("a", "apgd-t", 100), _row("b", "apgd-ce", 100)]
    assert ranked_protocol(tie) == Protocol("apgd-ce", 100)  # a tie: the attack's name decides
    assert ranked_protocol([]) is None and split([]) == ([], [])
