"""The attack registry: every entry against AutoAttack itself, the parsing of ``--attack``, the costs the budgets use,
and one real attack run through an entry."""

import pytest
import torch
from pyautoattack import AutoAttack
from torch import nn

from harness.attack.registry import ATTACKS, CUSTOM, AttackSpec, attack_choices, parse_attack, sub_attacks
from harness.core.errors import HarnessError


@pytest.mark.parametrize("name", list(ATTACKS))
def test_every_entry_runs_what_autoattack_runs_for_it(name):
    """An entry's sub-attacks are the ones AutoAttack runs for its version (or for the custom list it passes)."""
    spec = ATTACKS.get(name)
    assert isinstance(spec, AttackSpec) and spec.name == name and spec.description and spec.units >= 1
    attack = parse_attack(name)
    adversary = AutoAttack(
        nn.Flatten(),
        norm="Linf",
        eps=0.1,
        version=attack.version,
        attacks=list(attack.attacks) if attack.version == CUSTOM else None,
        device="cpu",
    )
    assert tuple(adversary.attacks_to_run) == spec.attacks == attack.attacks
    assert spec.combinable == (spec.version == CUSTOM) == (len(spec.attacks) == 1)


def test_the_versions_costs_and_eot_are_the_documented_ones():
    """README, Security model: attack units standard 4, plus 16, rand 40, an explicit list its length."""
    assert {n: parse_attack(n).units for n in ("standard", "plus", "rand")} == {"standard": 4, "plus": 16, "rand": 40}
    assert [n for n in ATTACKS if parse_attack(n).eot] == ["rand"]
    assert attack_choices() == "standard, plus, rand, or a comma list of apgd-ce, apgd-dlr, apgd-t, fab, fab-t, square"
    assert sub_attacks() == {"apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square"}


def test_parse_attack():
    standard = parse_attack(" Standard ")
    assert (standard.text, standard.version, standard.attacks) == ("standard", "standard", standard.specs[0].attacks)
    listed = parse_attack("apgd-ce, apgd-t")
    assert (listed.text, listed.version, listed.attacks, listed.units) == (
        "apgd-ce, apgd-t",  # the run's configuration key keeps the text as given (stripped, lower case)
        "custom",
        ("apgd-ce", "apgd-t"),
        2,
    )
    assert parse_attack("apgd-ce").version == "custom" and parse_attack("apgd-ce,apgd-ce").units == 2
    with pytest.raises(HarnessError, match="unknown attack 'pgd'") as err:
        parse_attack("apgd-ce,pgd")
    assert err.value.fix == f"use {attack_choices()}"
    with pytest.raises(HarnessError, match="unknown attack ','"):
        parse_attack(" , ")
    with pytest.raises(HarnessError, match="attack standard cannot be part of a comma list"):
        parse_attack("standard,apgd-ce")


def test_an_entry_runs_its_attack(fmnist_test):
    """The worker's way in: ``parse_attack(...).run`` is the verified, re-evaluated AutoAttack of the entry (on a
    linear model, labelled with its own predictions so that every point is attacked)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval()
    x = fmnist_test[0][:4]
    with torch.no_grad():
        y = model(x).argmax(1)
    out = parse_attack("apgd-ce").run(
        model, x, y, threat_model="Linf", eps=0.1, seed=0, batch_size=4, device="cpu", progress=False
    )
    assert out.x_adv.shape == x.shape and (out.x_adv - x).abs().max() <= 0.1 + 1e-6
    assert set(out.accuracy_after) == {"clean", "apgd-ce"} and out.accuracy_after["clean"] == 1.0
    with torch.no_grad():
        assert torch.equal(model(out.x_adv).argmax(1), out.adv_pred)
    assert out.accuracy_after["apgd-ce"] == (out.adv_pred == y).float().mean().item()
