"""One leaderboard section (:class:`Board`: a data set, threat model and eps) and its analysis, composed from the
report's modules: entries (harness.report.entries), controls, reliability, recipes, correlations, comparisons with
standard training and dose-response. Markdown, HTML and plots only render these values; tests assert on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.report import rules
from harness.report.comparisons import Comparison, uncompared, versus_standard
from harness.report.controls import BarCheck, Gates, bar_checks, beats_bar_on, noop_checks
from harness.report.correlations import Correlation, correlations
from harness.report.dose import DoseResponse, dose_response
from harness.report.entries import Entry
from harness.report.recipes import Recipe, recipes
from harness.report.reliability import RELIABILITY_METHOD, Reliability, reliability, reliable
from harness.report.scores import Pair
from harness.report.values import PLACEMENT_SENSITIVITY, SENSITIVITY
from harness.store.robustbench import rank_key


@dataclass
class Board:
    """One leaderboard section: a data set, threat model and eps, with its entries and every analysis of them.

    ``comparisons``, ``correlations`` and ``dose_response`` are the primary analysis (the declared rules of
    harness.report.rules on the primary basis of harness.report.values); ``sensitivity`` holds the comparisons
    again with one rule or basis changed at a time (raw scores, all images, the other output, occlusion's ceiling,
    the default standard baseline); ``correlation_sensitivity`` the across-recipe correlations on the bases that
    change how faithfulness is placed (raw scores, occlusion's ceiling)."""

    dataset: str
    threat_model: str
    eps_text: str
    entries: list[Entry] = field(default_factory=list)
    reported_only: list[dict[str, Any]] = field(default_factory=list)  # reported here, not measured
    reported: list[dict[str, Any]] = field(default_factory=list)  # every reported entry of this setting
    recipes: list[Recipe] = field(default_factory=list)
    inclusion: dict[str, rules.Inclusion] = field(default_factory=dict)
    controls: list[BarCheck] = field(default_factory=list)
    gates: Gates | None = None
    correlations: list[Correlation] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    sensitivity: dict[str, list[Comparison]] = field(default_factory=dict)
    correlation_sensitivity: dict[str, list[Correlation]] = field(default_factory=dict)
    dose_response: list[DoseResponse] = field(default_factory=list)
    reliability: list[Reliability] = field(default_factory=list)
    uncompared: list[str] = field(default_factory=list)  # robust recipes without a standard baseline, and why

    @property
    def key(self) -> tuple[str, str, str]:
        """(data set, threat model, eps text): which section it is."""
        return self.dataset, self.threat_model, self.eps_text

    @property
    def detail_pairs(self) -> list[Pair]:
        """Every (method, metric) some entry has, sorted (reliability and controls have their own sections)."""
        return sorted({key for e in self.entries for key in e.scores if key[0] != RELIABILITY_METHOD})

    @property
    def excluded(self) -> list[rules.Inclusion]:
        """The models the accuracy rule leaves out of the tests, with why."""
        return [i for i in self.inclusion.values() if not i.included]

    def informative(self, model: str, method: str, metric: str) -> bool:
        """Whether ``model``'s score beats its bar on that model (True when it has none); descriptive (†)."""
        return beats_bar_on(self.controls, model, method, metric)

    def reliable(self, metric: str) -> bool | None:
        """Reliable on every model that measured it (None when none did)."""
        return reliable(self.reliability, metric)


def analysed_board(key: tuple[str, str, str], entries: list[Entry], reported: list[dict[str, Any]]) -> Board:
    """The board of ``entries`` (ranked) with every analysis; ``reported``: the setting's reported entries, of
    which those of models not measured here are listed as reported only."""
    mine = {r["model_id"]: r for r in reported}
    measured = {e.model for e in entries}
    others = sorted((r for r in mine.values() if r["model_id"] not in measured), key=rank_key)
    board = Board(*key, entries, others)
    board.recipes = recipes(entries)
    board.inclusion = rules.inclusion(board.recipes)
    included = rules.included_recipes(board.recipes, board.inclusion)
    board.controls = bar_checks(entries) + noop_checks(entries)
    board.gates = gates = Gates(included, board.controls)
    board.reliability = reliability(entries)
    board.correlations = correlations(included, gates)
    board.comparisons = versus_standard(included, gates)
    board.sensitivity = {name: versus_standard(included, gates, basis=basis) for name, basis in SENSITIVITY.items()}
    board.sensitivity["default baseline"] = versus_standard(included, gates, default_baseline=True)
    board.correlation_sensitivity = {
        name: correlations(included, gates, SENSITIVITY[name]) for name in PLACEMENT_SENSITIVITY
    }
    board.uncompared = uncompared(included)
    board.dose_response = dose_response(included, gates)
    return board
