"""A stored run's scores as plain data, the one shape that the archive, ``results --json`` and the RobustBench
export share. Keep it stable: scripts and CI read it. Extend, never rename."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from harness.store.schema import RunRecord


def metric_summary(run: RunRecord) -> dict[str, dict[str, dict[str, Any]]]:
    """``{method: {metric: {mean, std, n, ci_low, ci_high, details}}}`` for a run."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for m in sorted(run.metrics, key=lambda m: (m.method, m.metric)):
        out.setdefault(m.method, {})[m.metric] = {
            "mean": m.mean,
            "std": m.std,
            "n": m.n,
            "ci_low": m.ci_low,
            "ci_high": m.ci_high,
            "details": m.details,
        }
    return out


def iso(value: datetime | None) -> str | None:
    """A stored time as ISO 8601 text (``None`` stays ``None``)."""
    return value.isoformat() if value is not None else None
