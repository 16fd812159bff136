"""A board's models grouped by training recipe (method, threat model, eps, architecture, epochs; one model per seed),
and each adversarially trained recipe's standard baseline: the one standard recipe of its architecture."""

from __future__ import annotations

from dataclasses import dataclass

from harness.report.entries import Entry


@dataclass
class Recipe:
    """Models trained with one recipe (method, threat model, eps, architecture, epochs), one per seed."""

    label: str
    training: str
    eps: float | None
    entries: list[Entry]
    architecture: str = ""

    @property
    def robust(self) -> bool:
        """Adversarially trained (a recorded training method other than standard)."""
        return self.training not in ("", "standard")

    @property
    def name(self) -> str:
        """Its model's name when it has one seed, else its label."""
        return self.entries[0].model if len(self.entries) == 1 else self.label


@dataclass(frozen=True)
class Match:
    """An adversarially trained recipe and the standard recipe it is compared with."""

    robust: Recipe
    baseline: Recipe


def recipes(entries: list[Entry]) -> list[Recipe]:
    """The board's models grouped by training recipe, in entry order (models without a recipe stand alone)."""
    groups: dict[str, Recipe] = {}
    for e in entries:
        label = e.recipe or e.model
        groups.setdefault(label, Recipe(label, e.training, e.eps_trained, [], e.architecture)).entries.append(e)
    return list(groups.values())


def baselines(all_recipes: list[Recipe], recipe: Recipe) -> list[Recipe]:
    """The standard recipes of ``recipe``'s architecture (its baseline when there is exactly one)."""
    return [b for b in all_recipes if b.training == "standard" and b.architecture == recipe.architecture]


def matches(all_recipes: list[Recipe]) -> list[Match]:
    """Every adversarially trained recipe with exactly one standard recipe of its architecture, with that one."""
    return [Match(r, bases[0]) for r in all_recipes if r.robust and len(bases := baselines(all_recipes, r)) == 1]


def unmatched_recipes(all_recipes: list[Recipe]) -> list[str]:
    """The adversarially trained recipes :func:`matches` leaves out, each with the reason."""
    out = []
    for r in all_recipes:
        if not r.robust:
            continue
        n = len(baselines(all_recipes, r))
        if n != 1:
            arch = r.architecture or "unrecorded"
            out.append(
                f"{r.name}: {'no' if n == 0 else n} standard recipe{'s' if n > 1 else ''} of architecture {arch}"
            )
    return out
