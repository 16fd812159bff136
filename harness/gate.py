"""The regression gate: re-run a fixed, fast configuration on the reference models and compare with a baseline.

Configuration (``GATE``): the first 64 Fashion-MNIST test images, AutoAttack ``apgd-ce`` (Linf 0.1), seed 0,
saliency and integrated gradients x ABPC, relative deletion, relevance mass ratio and sparseness on the first
32 images. Tolerances come from the sampling error of n: an accuracy may move by ``z * sqrt(p(1-p)/n)`` (p from
the baseline, with a Laplace correction so that 0% and 100% keep a non-zero tolerance), a metric mean by
``z * std / sqrt(n)`` of its per-example values, z = 3 by default (``--z``). Only changes in the worse direction
beyond tolerance fail the gate; changes for the better are reported.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import RunConfig
from harness.errors import HarnessError
from harness.records import result_record
from harness.storage import get_run, open_database, transaction
from metrics.registry import METRICS

GATE: dict[str, Any] = {
    "n_examples": 64, "batch_size": 64, "attack": "apgd-ce", "seed": 0, "methods": "saliency,integrated_gradients",
    "metrics": "abpc,deletion_relative,relevance_mass_ratio,sparseness", "n_explain": 32,
}  # fmt: skip
REFERENCE_MODELS = ("fmnist_standard", "fmnist_pgd_linf", "fmnist_trades_linf")
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


def measure(submissions: Path, models: tuple[str, ...], *, data_dir: Path | None, progress: bool) -> dict[str, Any]:
    """Run the gate configuration on each model; returns the numbers in the baseline's shape."""
    from harness.evaluate import evaluate

    out: dict[str, Any] = {"config": GATE, "models": {}}
    with tempfile.TemporaryDirectory(prefix="robint-gate-") as tmp:
        db = f"sqlite:///{tmp}/gate.db"
        for name in models:
            path = submissions / f"{name}.py"
            if not path.is_file():
                raise HarnessError(f"reference model {path} not found", "pass --submissions DIR holding it")
            summary = evaluate(RunConfig(model=path, db=db, data_dir=data_dir, progress=progress, **GATE))
            with transaction(open_database(db)) as s:
                record = result_record(get_run(s, summary.run_id))
            n = record["n_examples"]
            entry: dict[str, Any] = {"clean_acc": {"value": record["clean_acc"], "n": n},
                                     "robust_acc": {"value": record["robust_acc"], "n": n}}  # fmt: skip
            for method, scores in record["metrics"].items():
                for metric, stats in scores.items():
                    entry[f"{method}/{metric}"] = {"value": stats["mean"], "std": stats["std"], "n": stats["n"]}
            out["models"][name] = entry
    return out


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
        lines.append(f"{r.model:<20} {r.quantity:<44} {r.baseline:9.4f} {r.now:9.4f} {r.delta:+9.4f} "
                     f"{r.tolerance:9.4f}  {verdict}")  # fmt: skip
    return "\n".join(lines)


def load_baseline(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise HarnessError(f"no baseline at {path}", "create it with `robint-bench check --update`") from None
    except json.JSONDecodeError as exc:
        raise HarnessError(f"baseline {path} is not valid JSON ({exc})", "restore it from git") from None
