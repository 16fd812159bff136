"""Dose-response across training eps: within a family of included recipes that differ only in eps (same method,
training threat model, architecture and epochs; the standard recipe of that architecture trained for as many epochs
is eps 0, else its default standard recipe), Spearman's rank correlation between the eps levels and their mean scores,
one point per level (``metrics.stats.dose_response``: exact permutation over the levels, so 5 levels can reach
p = 2/120 and 4 cannot reject at 5%), Holm-adjusted over the board's tests. Eps of different threat models are never
mixed. Scores are taken on the board's basis (harness.report.values), on the images every model of the family
classifies correctly."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from harness.report.comparisons import Gate
from harness.report.recipes import Recipe
from harness.report.rules import baselines
from harness.report.values import PRIMARY, Basis, scored_metric, select
from harness.report.verdicts import adjusted_verdict
from metrics.registry import HEADLINE, METRICS, output_variant
from metrics.stats import holm
from metrics.stats.units import dose_response as level_test

MIN_EPS = 3  # distinct eps levels (standard training's 0 included) a family needs to be tested


@dataclass(frozen=True)
class DoseResponse:
    """Spearman correlation between the training eps levels of one family and their mean scores."""

    method: str  # the family's label and the attribution method, e.g. "fgsm-rs Linf gap-cnn 3ep (expected_gradients)"
    metric: str
    n_models: int
    eps_values: tuple[float, ...]
    rho: float
    p_value: float
    p_adjusted: float
    verdict: str
    smallest_p: float = math.nan
    normalised: bool = False
    baseline: str = ""
    note: str = ""


@dataclass(frozen=True)
class Family:
    """What recipes of one dose-response family share: everything of their training recipe but eps."""

    training: str
    threat: str
    architecture: str
    epochs: int | None

    @classmethod
    def of(cls, r: Recipe) -> Family:
        e = r.entries[0]
        return cls(e.training, e.threat_trained, e.architecture, e.epochs)

    @property
    def label(self) -> str:
        """``method threat architecture epochs``, e.g. ``fgsm-rs Linf gap-cnn 3ep``."""
        parts = (self.training, self.threat, self.architecture, f"{self.epochs}ep" if self.epochs else "")
        return " ".join(str(p) for p in parts if p)


def families(recipes: list[Recipe]) -> list[tuple[Family, list[Recipe]]]:
    """Each family of adversarially trained recipes with its eps-0 baseline first (families without a baseline
    left out), in order of first appearance."""
    adversarial = [r for r in recipes if r.robust and r.eps is not None]
    out = []
    for family in dict.fromkeys(Family.of(r) for r in adversarial):
        members = [r for r in adversarial if Family.of(r) == family]
        base = baselines(recipes, members[0]).primary
        if base is not None:
            out.append((family, [base, *members]))
    return out


def dose_response(recipes: list[Recipe], gate: Gate, basis: Basis = PRIMARY) -> list[DoseResponse]:
    """One test per family with at least :data:`MIN_EPS` eps levels and headline score, Holm-adjusted over the
    board's tests (scores whose method does not beat its bar get no test)."""
    raw = []
    for family, members in families(recipes):
        eps = {r.label: (0.0 if not r.robust else float(r.eps)) for r in members}
        if len(set(eps.values())) < MIN_EPS:
            continue
        entries = [e for r in members for e in r.entries]
        labels = [r.label for r in members for _ in r.entries]
        for method, name in HEADLINE:
            stored = scored_metric(entries, name, basis)
            if stored is None or any((method, stored) not in e.scores for e in entries):
                continue
            if not gate(method, stored):
                continue
            if all(e.scores[(method, stored)].n <= 1 for e in entries):
                scores, normalised = [e.scores[(method, stored)].mean for e in entries], False
            else:
                selection = select(entries, (method, name), basis)
                if selection is None:
                    continue
                scores, normalised = list(selection.means), selection.normalised
            if any(s is None or not np.isfinite(s) for s in scores) or np.ptp(scores) == 0:
                continue
            r = level_test([eps[label] for label in labels], scores, recipes=labels)
            raw.append(
                DoseResponse(
                    f"{family.label} ({method})",
                    name,
                    len(entries),
                    tuple(sorted(float(v) for v in r.labels)),
                    r.rho,
                    r.p_value,
                    math.nan,
                    "",
                    smallest_p=r.smallest_p,
                    normalised=normalised,
                    baseline=members[0].name,
                )
            )
    adjusted = holm([d.p_value for d in raw]) if raw else []
    out = []
    for d, p_adj in zip(raw, adjusted, strict=True):
        higher = True if d.normalised else METRICS.get(output_variant(d.metric, "probability")).higher_is_better
        out.append(replace(d, p_adjusted=float(p_adj), verdict=adjusted_verdict(d.rho, p_adj, higher)))
    return out
