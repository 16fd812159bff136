"""The attacks ``--attack`` names: one :class:`AttackSpec` per attack in one registry, :data:`ATTACKS`.

Each entry says which sub-attacks it runs (the keys of AutoAttack's log, the only ones the parent accepts from the
worker: harness.pipeline.validate), its cost in the units of the run's budgets (harness.pipeline.budgets), whether
it is made for randomised models (EOT), and how the worker runs it (``run``). ``--attack`` takes one entry, or a
comma list of the entries that combine (AutoAttack's ``custom`` version: its single sub-attacks);
:func:`parse_attack` turns the option into an :class:`Attack`. Parsing and validation, the budgets, the worker's
schema for attack results, ``robint-bench list`` and the worker's attack all read this table: adding an attack is
one entry here plus its test (tests/harness/attack/test_registry.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from harness.attack.autoattack import AttackOutcome, run_autoattack
from harness.core.errors import HarnessError
from metrics.registry_base import Registry

CUSTOM = "custom"  # AutoAttack's version for an explicit list of its sub-attacks


def autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, attack: Attack, **options) -> AttackOutcome:
    """How the worker runs an AutoAttack entry: its version, or AutoAttack's ``custom`` version with the listed
    sub-attacks (``options``: harness.attack.autoattack.run_autoattack's keywords)."""
    custom = attack.version == CUSTOM
    attacks = list(attack.attacks) if custom else None
    return run_autoattack(model, x, y, version=attack.version, attacks=attacks, **options)


@dataclass(frozen=True)
class AttackSpec:
    """One registered attack.

    ``attacks``: the sub-attacks it runs, in order (AutoAttack's names); ``version``: the AutoAttack version it
    asks for (``custom``: a single sub-attack, which combines with others in a comma list); ``units``: its cost in
    the budgets' attack units; ``eot``: made for randomised models (expectation over transformations); ``run``: how
    the worker runs it, ``run(model, x, y, *, attack, threat_model, eps, seed, batch_size, device, progress)`` with
    x ``(N, C, H, W)`` in [0, 1] and y ``(N,)``, returning the verified :class:`AttackOutcome`.
    """

    name: str
    description: str
    attacks: tuple[str, ...]
    units: int
    version: str = CUSTOM
    eot: bool = False
    run: Callable[..., AttackOutcome] = autoattack

    @property
    def combinable(self) -> bool:
        """Whether the entry may appear in a comma list (a single sub-attack of AutoAttack's ``custom`` version)."""
        return self.version == CUSTOM


@dataclass(frozen=True)
class Attack:
    """An ``--attack`` value, parsed: one entry, or a comma list of combinable entries (in the order given)."""

    text: str  # the option as the run records it: stripped, lower case (part of the run's configuration key)
    specs: tuple[AttackSpec, ...]

    @property
    def version(self) -> str:
        """AutoAttack's version: the entry's own, or ``custom`` for a list of sub-attacks."""
        return self.specs[0].version if len(self.specs) == 1 else CUSTOM

    @property
    def attacks(self) -> tuple[str, ...]:
        """The sub-attacks run, in order: the keys the attack's log may report, besides ``clean``."""
        return tuple(a for spec in self.specs for a in spec.attacks)

    @property
    def units(self) -> int:
        """Its cost in the budgets' attack units (a list: the sum of its entries')."""
        return sum(spec.units for spec in self.specs)

    @property
    def eot(self) -> bool:
        return any(spec.eot for spec in self.specs)

    def run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, **options) -> AttackOutcome:
        """Attack ``x`` ``(N, C, H, W)`` with labels ``y`` ``(N,)`` as the entry says (``options``: the runner's
        keywords: threat_model, eps, seed, batch_size, device, progress)."""
        return self.specs[0].run(model, x, y, attack=self, **options)


ATTACKS: Registry[AttackSpec] = Registry("attack", error=HarnessError)


def register(spec: AttackSpec) -> AttackSpec:
    """Add ``spec`` to :data:`ATTACKS` under its name."""
    return ATTACKS.add(spec.name, spec)


# AutoAttack's versions: the sub-attacks pyautoattack's AutoAttack sets for each (its _set_version; tested to agree)
register(AttackSpec("standard", "AutoAttack standard", ("apgd-ce", "apgd-t", "fab-t", "square"), 4, "standard"))
register(
    AttackSpec(
        "plus",
        "AutoAttack plus, more restarts",
        ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"),
        16,
        "plus",
    )
)
register(
    AttackSpec("rand", "AutoAttack rand, EOT for randomised models", ("apgd-ce", "apgd-dlr"), 40, "rand", eot=True)
)
# AutoAttack's sub-attacks, each alone or in a comma list (its custom version)
for _name, _description in (
    ("apgd-ce", "APGD on the cross-entropy"),
    ("apgd-dlr", "APGD on the DLR loss"),
    ("apgd-t", "targeted APGD (DLR)"),
    ("fab", "FAB"),
    ("fab-t", "targeted FAB"),
    ("square", "Square (black box)"),
):
    register(AttackSpec(_name, _description, (_name,), 1))


def parse_attack(text: str) -> Attack:
    """``--attack``: one registered attack (``standard``) or a comma list of combinable ones (``apgd-ce,apgd-t``).

    >>> parse_attack("standard").attacks, parse_attack(" APGD-CE, apgd-t").attacks
    (('apgd-ce', 'apgd-t', 'fab-t', 'square'), ('apgd-ce', 'apgd-t'))
    >>> parse_attack("apgd-ce, apgd-t").version, parse_attack("apgd-ce, apgd-t").units, parse_attack("rand").units
    ('custom', 2, 40)

    Raises:
        HarnessError: an unknown attack, or an attack in a list that does not combine.
    """
    spec = text.strip().lower()
    if spec in ATTACKS:
        return Attack(spec, (ATTACKS.get(spec),))
    names = [a.strip() for a in spec.split(",") if a.strip()]
    unknown = [a for a in names if a not in ATTACKS]
    if not names or unknown:
        raise HarnessError(f"unknown attack {', '.join(unknown) or spec!r}", f"use {attack_choices()}")
    alone = [a for a in names if not ATTACKS.get(a).combinable]
    if alone:
        raise HarnessError(f"attack {', '.join(alone)} cannot be part of a comma list", f"use {attack_choices()}")
    return Attack(spec, tuple(ATTACKS.get(a) for a in names))


def versions() -> list[AttackSpec]:
    """The entries used alone (AutoAttack's versions), cheapest first."""
    return sorted((s for _, s in ATTACKS.items() if not s.combinable), key=lambda s: (s.units, s.name))


def combinable() -> list[AttackSpec]:
    """The entries a comma list may hold (single sub-attacks), by name."""
    return [s for _, s in ATTACKS.items() if s.combinable]


def sub_attacks() -> frozenset[str]:
    """Every sub-attack any entry runs: the keys an attack's log may report, besides ``clean``."""
    return frozenset(a for _, s in ATTACKS.items() for a in s.attacks)


def attack_choices() -> str:
    """What ``--attack`` accepts, in words (for error messages)."""
    names = [s.name for s in versions()]
    return f"{', '.join(names)}, or a comma list of {', '.join(s.name for s in combinable())}"
