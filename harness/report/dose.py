"""Dose-response across training eps: within a family of models that differ only in eps (same method, training
threat model, architecture and epochs; standard training of the same architecture counted as eps 0), Spearman's rank
correlation between eps and each headline score, permutation-tested and Holm-adjusted over the board's tests. Eps of
different threat models are never mixed."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from harness.report.controls import Informative
from harness.report.entries import Entry
from harness.report.scores import Pair
from harness.report.verdicts import adjusted_verdict
from metrics.registry import HEADLINE, METRICS
from metrics.stats import dose_response_test, holm

MIN_EPS = 3  # distinct eps values (standard training's 0 included) a family needs


@dataclass(frozen=True)
class DoseResponse:
    """Spearman correlation between the training eps and a score across the models of one training recipe that
    differ only in eps (method, threat model, architecture, epochs; standard training of the same architecture
    counted as eps 0), with a permutation p-value."""

    method: str
    metric: str
    n_models: int
    eps_values: tuple[float, ...]
    rho: float
    p_value: float
    p_adjusted: float
    verdict: str


@dataclass(frozen=True)
class Family:
    """What models of one dose-response family share: everything of their training recipe but eps."""

    training: str
    threat: str
    architecture: str
    epochs: int | None

    @classmethod
    def of(cls, e: Entry) -> Family:
        return cls(e.training, e.threat_trained, e.architecture, e.epochs)

    @property
    def label(self) -> str:
        """``method threat architecture epochs``, e.g. ``fgsm-rs Linf cnn 3ep``."""
        parts = (self.training, self.threat, self.architecture, f"{self.epochs}ep" if self.epochs else "")
        return " ".join(str(p) for p in parts if p)


def families(entries: list[Entry]) -> list[tuple[Family, list[Entry], list[float]]]:
    """Each family of adversarially trained entries with its models (the architecture's standard models first) and
    their training eps (standard: 0), in order of first appearance; families with too few eps values included."""
    adversarial = [e for e in entries if e.training not in ("", "standard") and e.eps_trained is not None]
    out = []
    for family in dict.fromkeys(Family.of(e) for e in adversarial):
        standard = [e for e in entries if e.training == "standard" and e.architecture == family.architecture]
        models = standard + [e for e in adversarial if Family.of(e) == family]
        out.append((family, models, [0.0 if e.training == "standard" else float(e.eps_trained) for e in models]))
    return out


def eps_vs_score(
    models: list[Entry], eps: list[float], pair: Pair, informative: Informative
) -> tuple[list[float], list[float]]:
    """Training eps and mean score of every model with an informative score of ``pair`` (two ``(k,)`` lists)."""
    kept = [
        (x, e.scores[pair].mean)
        for x, e in zip(eps, models, strict=True)
        if pair in e.scores and e.scores[pair].mean is not None and informative(e.model, *pair)
    ]
    return [x for x, _ in kept], [v for _, v in kept]


def dose_response(entries: list[Entry], informative: Informative) -> list[DoseResponse]:
    """One test per family with at least :data:`MIN_EPS` eps values and headline score with as many among its
    informative scores (and some variation), Holm-adjusted over the board's tests."""
    raw = []
    for family, models, eps in families(entries):
        if len(set(eps)) < MIN_EPS:
            continue
        for pair in HEADLINE:
            x, y = eps_vs_score(models, eps, pair, informative)
            if len(set(x)) < MIN_EPS or np.ptp(y) == 0:
                continue
            rho, p = dose_response_test(x, y, alternative="two-sided")
            label = f"{family.label} ({pair[0]})"
            raw.append(DoseResponse(label, pair[1], len(x), tuple(sorted(set(x))), rho, p, math.nan, ""))
    adjusted = holm([d.p_value for d in raw]) if raw else []
    return [
        replace(
            d, p_adjusted=float(p_adj), verdict=adjusted_verdict(d.rho, p_adj, METRICS.get(d.metric).higher_is_better)
        )
        for d, p_adj in zip(raw, adjusted, strict=True)
    ]
