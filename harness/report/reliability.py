"""The MetaQuantus reliability scores stored on a board's runs (``run --reliability``; metrics.suite_reliability):
is a metric reliable on the models that measured it? Each verdict is recomputed from the stored criteria and
kept-image counts against the noise metric's null (``metrics.suite_reliability.stored_verdict``), never read from a
stored flag; a metric measured before the noise threshold, or never measured, is "not assessed"."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.report.entries import Entry
from metrics.suite_reliability import METHOD as RELIABILITY_METHOD
from metrics.suite_reliability import stored_verdict

__all__ = ["RELIABILITY_METHOD", "Reliability", "reliability", "reliable"]


@dataclass(frozen=True)
class Reliability:
    """A metric's MetaQuantus reliability on one model: MC, noise resilience and adversary reactivity, the noise
    null's thresholds they must exceed, and the verdict's ``status`` ("reliable", "not reliable", "not assessed")."""

    model: str
    metric: str
    mc: float
    noise_resilience: float
    adversary_reactivity: float
    status: str
    thresholds: tuple[float, float] = (float("nan"), float("nan"))
    reason: str = ""

    @property
    def reliable(self) -> bool:
        return self.status == "reliable"


def reliability(entries: list[Entry]) -> list[Reliability]:
    """The reliability scores of the entries' runs, in entry and score order (a score whose details cannot be read
    is "not assessed", with the reason)."""
    out = []
    for e in entries:
        for (method, metric), score in e.scores.items():
            if method != RELIABILITY_METHOD or score.mean is None or "iac_nr" not in score.details:
                continue  # not a reliability result
            try:
                v = stored_verdict(metric, score.details)
            except ValueError as exc:
                out.append(
                    Reliability(
                        e.model, metric, score.mean, float("nan"), float("nan"), "not assessed", reason=str(exc)
                    )
                )
                continue
            out.append(
                Reliability(
                    e.model,
                    metric,
                    score.mean,
                    v.noise_resilience,
                    v.adversary_reactivity,
                    v.status,
                    v.thresholds,
                    v.reason,
                )
            )
    return out


def reliable(found: Iterable[Reliability], metric: str) -> bool | None:
    """Whether ``metric`` is reliable on every model that assessed it (None when none did: not assessed)."""
    verdicts = [r.reliable for r in found if r.metric == metric and r.status != "not assessed"]
    return all(verdicts) if verdicts else None
