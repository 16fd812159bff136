"""One leaderboard section (:class:`Board`: a data set, threat model and eps) and its analysis, composed from the
report's modules: entries (harness.report.entries), controls, reliability, recipes, correlations, comparisons with
standard training and dose-response. Markdown, HTML and plots only render these values; tests assert on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.report.comparisons import Comparison, versus_standard
from harness.report.controls import ControlCheck, beats_controls, control_checks
from harness.report.correlations import Correlation, correlations
from harness.report.dose import DoseResponse, dose_response
from harness.report.entries import Entry
from harness.report.recipes import Recipe, recipes, unmatched_recipes
from harness.report.reliability import RELIABILITY_METHOD, Reliability, reliability, reliable
from harness.report.scores import Pair
from harness.store.robustbench import rank_key


@dataclass
class Board:
    """One leaderboard section: a data set, threat model and eps."""

    dataset: str
    threat_model: str
    eps_text: str
    entries: list[Entry] = field(default_factory=list)
    reported_only: list[dict[str, Any]] = field(default_factory=list)  # reported here, not measured
    reported: list[dict[str, Any]] = field(default_factory=list)  # every reported entry of this setting
    recipes: list[Recipe] = field(default_factory=list)
    controls: list[ControlCheck] = field(default_factory=list)
    correlations: list[Correlation] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    dose_response: list[DoseResponse] = field(default_factory=list)
    reliability: list[Reliability] = field(default_factory=list)
    uncompared: list[str] = field(default_factory=list)  # robust recipes without one standard baseline, and why
    standard_model: str | None = None  # the standard baseline's label (one baseline), or what each row is compared with

    @property
    def key(self) -> tuple[str, str, str]:
        """(data set, threat model, eps text): which section it is."""
        return self.dataset, self.threat_model, self.eps_text

    @property
    def detail_pairs(self) -> list[Pair]:
        """Every (method, metric) some entry has, sorted (reliability and controls have their own sections)."""
        return sorted({key for e in self.entries for key in e.scores if key[0] != RELIABILITY_METHOD})

    def informative(self, model: str, method: str, metric: str) -> bool:
        """Whether ``model``'s score beats every control the metric must beat (True when none was scored)."""
        return beats_controls(self.controls, model, method, metric)

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
    board.controls = control_checks(entries)
    board.reliability = reliability(entries)
    board.correlations = correlations(entries, board.informative)
    board.standard_model, board.comparisons = versus_standard(board.recipes, board.informative)
    board.uncompared = unmatched_recipes(board.recipes)
    board.dose_response = dose_response(entries, board.informative)
    return board
