"""Which of a board's rows are ranked: robust accuracies from different attacks, or on different numbers of test
images, are not comparable, so a ranking holds rows of one attack protocol at one n, and the others are listed
apart with their attack and n (a badge).

RobustBench's rule: AutoAttack ``standard`` on the most examples. A board without a standard row ranks the protocol
at its largest n that most rows share (ties: the attack's name).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from harness.report.entries import Entry

STANDARD = "standard"


@dataclass(frozen=True, order=True)
class Protocol:
    """How a row's robust accuracy was measured: the ``attack`` (``--attack``) on the first ``n`` test images."""

    attack: str
    n: int

    @property
    def badge(self) -> str:
        """E.g. ``AutoAttack standard, n=1000`` or ``apgd-ce + apgd-t, n=1000`` (``--attack apgd-ce,apgd-t``)."""
        if self.attack in (STANDARD, "plus", "rand"):
            attack = f"AutoAttack {self.attack}"
        else:
            attack = " + ".join(a.strip() for a in self.attack.split(","))
        return f"{attack}, n={self.n}"


def protocol_of(e: Entry) -> Protocol:
    return Protocol(e.attack, e.n)


def ranked_protocol(entries: Sequence[Entry]) -> Protocol | None:
    """The protocol a board ranks (None without rows): AutoAttack standard at its largest n, else the attack most
    rows at the largest n share."""
    if not entries:
        return None
    standard = [e.n for e in entries if e.attack == STANDARD]
    if standard:
        return Protocol(STANDARD, max(standard))
    n = max(e.n for e in entries)
    shared = Counter(e.attack for e in entries if e.n == n)
    attack = min(shared, key=lambda a: (-shared[a], a))
    return Protocol(attack, n)


def split(entries: Sequence[Entry]) -> tuple[list[Entry], list[Entry]]:
    """(the ranked rows, in the board's order; the other rows, by protocol, most examples first, then in the board's
    order)."""
    protocol = ranked_protocol(entries)
    ranked = [e for e in entries if protocol_of(e) == protocol]
    others = [e for e in entries if protocol_of(e) != protocol]
    order = {id(e): i for i, e in enumerate(entries)}
    others.sort(key=lambda e: (-e.n, e.attack, order[id(e)]))
    return ranked, others
