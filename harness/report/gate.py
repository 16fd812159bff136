"""The regression gate's verdict: numbers measured now (harness.pipeline.gate) against the committed baseline.

Tolerances come from the sampling error of n: an accuracy may move by ``z * sqrt(p(1-p)/n)`` (p from
the baseline, with a Laplace correction so that 0% and 100% keep a non-zero tolerance), a metric mean by
``z * std / sqrt(n)`` of its per-example values, z = 3 by default (``--z``). Only changes in the worse direction
beyond tolerance fail the gate; changes for the better are reported.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.store.files import write_text_atomic
from metrics.registry import METRICS

DEFAULT_BASELINE = Path("results/baseline.json")


@dataclass
class Row:
    model: str
    quantity: str
    baseline: float
    now: float
    tolerance: float
    worse_if: str  # "lower" or "higher"

    @property
    def delta(self) -> float:
        return self.now - self.baseline

    @property
    def failed(self) -> bool:
        return math.isnan(self.now) or self.verdict == "REGRESSION"

    @property
    def verdict(self) -> str:
        worse = -self.delta if self.worse_if == "lower" else self.delta
        if worse > self.tolerance:
            return "REGRESSION"
        if -worse > self.tolerance:
            return "better"
        return "ok"


def compare(baseline: dict[str, Any], now: dict[str, Any], z: float = 3.0) -> list[Row]:
    """One row per number in the baseline (a number missing now is a regression)."""
    if baseline.get("config") != now.get("config"):
        raise HarnessError("the baseline was made with another gate configuration", "run `robint-bench check --update`")
    rows = []
    for model, quantities in baseline["models"].items():
        for quantity, base in quantities.items():
            current = now["models"].get(model, {}).get(quantity, {}).get("value")
            value = math.nan if current is None else float(current)
            if quantity in ("clean_acc", "robust_acc"):
                n, p = base["n"], (base["value"] * base["n"] + 1) / (base["n"] + 2)
                tolerance, worse_if = z * math.sqrt(p * (1 - p) / n), "lower"
            else:
                metric = quantity.split("/", 1)[1]
                std = base.get("std") or 0.0
                tolerance = z * std / math.sqrt(max(base["n"], 1))
                worse_if = "lower" if METRICS.get(metric).higher_is_better else "higher"
            rows.append(Row(model, quantity, float(base["value"]), value, tolerance, worse_if))
    return rows


def format_table(rows: list[Row]) -> str:
    lines = [f"{'model':<20} {'quantity':<44} {'baseline':>9} {'now':>9} {'delta':>9} {'tolerance':>9}  verdict"]
    for r in rows:
        verdict = "REGRESSION (missing)" if math.isnan(r.now) else r.verdict
        lines.append(
            f"{r.model:<20} {r.quantity:<44} {r.baseline:9.4f} {r.now:9.4f} {r.delta:+9.4f} "
            f"{r.tolerance:9.4f}  {verdict}"
        )
    return "\n".join(lines)


def load_baseline(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise HarnessError(f"no baseline at {path}", "create it with `robint-bench check --update`") from None
    except json.JSONDecodeError as exc:
        raise HarnessError(f"baseline {path} is not valid JSON ({exc})", "restore it from git") from None


def update_baseline(path: Path, now: dict[str, Any], *, merge: bool) -> Path:
    """Write ``now`` as the baseline; with ``merge``, keep the baseline's other models (a partial ``--only`` run)."""
    merged = load_baseline(path) if merge and path.exists() else {"config": now["config"], "models": {}}
    merged["models"].update(now["models"])
    return write_text_atomic(path, json.dumps(merged, indent=1, sort_keys=True) + "\n")


def check_against(path: Path, now: dict[str, Any], *, z: float) -> list[Row]:
    """The rows comparing ``now`` with the baseline at ``path``, for the models ``now`` measured."""
    reference = load_baseline(path)
    reference["models"] = {k: v for k, v in reference["models"].items() if k in now["models"]}
    return compare(reference, now, z=z)
