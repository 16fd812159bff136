"""The MetaQuantus reliability scores stored on a board's runs (``run --reliability``; metrics.suite_reliability):
is a metric reliable on the models that measured it?"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.report.entries import Entry
from metrics.suite_reliability import METHOD as RELIABILITY_METHOD

__all__ = ["RELIABILITY_METHOD", "Reliability", "reliability", "reliable"]


@dataclass(frozen=True)
class Reliability:
    """A metric's MetaQuantus reliability on one model (noise resilience, adversary reactivity, MC)."""

    model: str
    metric: str
    mc: float
    noise_resilience: float
    adversary_reactivity: float
    reliable: bool


def reliability(entries: list[Entry]) -> list[Reliability]:
    """The reliability scores of the entries' runs, in entry and score order."""
    out = []
    for e in entries:
        for (method, metric), score in e.scores.items():
            d = score.details
            if method == RELIABILITY_METHOD and score.mean is not None and "noise_resilience" in d:
                out.append(
                    Reliability(
                        e.model,
                        metric,
                        score.mean,
                        d["noise_resilience"],
                        d["adversary_reactivity"],
                        bool(d.get("reliable")),
                    )
                )
    return out


def reliable(found: Iterable[Reliability], metric: str) -> bool | None:
    """Whether ``metric`` is reliable on every model that measured it (None when none did)."""
    verdicts = [r.reliable for r in found if r.metric == metric]
    return all(verdicts) if verdicts else None
